/**
 * Recipient suggestions while typing: the correspondents this browser has pinned, and what the
 * server's directory holds that matches what is being typed (`GET /api/v1/directory`):
 * accounts, groups (offered as `group:ORGANISATION/GROUP`) and organisations (offered as
 * `group:ORGANISATION/`, to go on typing a group's name). A suggestion only fills in an address:
 * the keys of every recipient, and the members of every group, are still proved when the files
 * are sent.
 */

import { call } from "./api.js";
import { h, replace } from "./dom.js";

/** One match of the directory. */
export interface Entry {
  kind: "user" | "service" | "group" | "organisation";
  email: string | null;
  /** `org/group` for a group, the slug for an organisation. */
  name: string | null;
  title: string | null;
  devices: number;
  members: number | null;
}

/** What a suggestion writes into the field, and what it shows beside it. */
export interface Suggestion {
  value: string;
  label?: string;
}

const WAIT_MS = 200;
const SHOWN = 8;

/** Split "a@x, b@y, ca" into the addresses already typed ("a@x, b@y, ") and the one being typed. */
export function lastAddress(text: string): { head: string; typing: string } {
  const match = /^(.*[,;\s])?([^,;\s]*)$/s.exec(text);
  return { head: match?.[1] ?? "", typing: match?.[2] ?? text };
}

/** What an entry of the directory suggests, or null for an entry of no kind known here. */
export function suggestionOf(entry: Entry): Suggestion | null {
  const label = entry.title ?? undefined;
  switch (entry.kind) {
    case "user":
    case "service":
      return entry.email ? { value: entry.email } : null;
    case "group":
      return entry.name ? { value: `group:${entry.name}`, label } : null;
    case "organisation":
      return entry.name ? { value: `group:${entry.name}/`, label } : null;
    default:
      return null;
  }
}

/** What to ask the directory for: the text typed, without the `group:` that starts a group. */
export function needleOf(typing: string): string {
  const needle = typing.toLowerCase();
  return needle.startsWith("group:") ? needle.slice("group:".length) : needle;
}

/** Keep `list` (the input's datalist) filled with whole values: what is typed, completed. */
export function suggest(input: HTMLInputElement, list: HTMLDataListElement, pinned: string[]): void {
  let asked = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const show = (head: string, found: Suggestion[]): void => {
    const unique = [...new Map(found.map((s) => [s.value, s])).values()].slice(0, SHOWN);
    replace(list, ...unique.map((s) => h("option", { value: `${head}${s.value}`, label: s.label })));
  };
  input.addEventListener("input", () => {
    clearTimeout(timer);
    const { head, typing } = lastAddress(input.value);
    const needle = needleOf(typing);
    const local = pinned.filter((email) => email.includes(typing.toLowerCase())).map((value) => ({ value }));
    show(head, local);
    if (needle.length < 2) return;
    const mine = ++asked;
    timer = setTimeout(() => {
      call<Entry[]>("GET", `/api/v1/directory?${new URLSearchParams({ q: needle, limit: String(SHOWN) })}`).then(
        (found) => mine === asked && show(head, [...local, ...found.flatMap((e) => suggestionOf(e) ?? [])]),
        () => undefined, // suggestions are a convenience: a refusal leaves the pinned ones
      );
    }, WAIT_MS);
  });
}
