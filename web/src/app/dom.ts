/**
 * Building the page without HTML strings: every node is made with `createElement` and every
 * text with `textContent`, so nothing a server or a sender wrote can become markup. The page's
 * policy (`require-trusted-types-for 'script'`) would refuse `innerHTML` anyway.
 */

export type Child = Node | string | null | undefined | false;
export type Attrs = Record<string, string | boolean | number | EventListener | undefined>;

/** An element with attributes (`on…` names add listeners) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (typeof value === "function") node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

export function append(node: Node, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
  }
}

/** Replace everything inside `node`. */
export function replace(node: Node, ...children: Child[]): void {
  while (node.firstChild) node.removeChild(node.firstChild);
  append(node, children);
}

/** A form field with its label; the input gets a stable id so the label is tied to it. */
export function field(label: string, input: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement, hint?: string): HTMLElement {
  input.id ||= `f-${label.replace(/[^A-Za-z0-9]+/g, "-").toLowerCase()}-${counter++}`;
  const hintNode = hint ? h("small", { id: `${input.id}-hint` }, hint) : null;
  if (hintNode) input.setAttribute("aria-describedby", hintNode.id);
  return h("div", { class: "field" }, h("label", { for: input.id }, label), input, hintNode);
}

let counter = 0;

/** A status line read out by screen readers when it changes. */
export function status(kind: "error" | "info" | "ok", text: string): HTMLElement {
  return h("p", { class: `status ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}
