/**
 * Recipient suggestions while typing: the correspondents this browser has pinned, and the
 * accounts of the server whose email contains what is being typed (`GET /api/v1/directory`).
 * A suggestion only fills in an address: the keys of every recipient are still fetched and
 * checked against the pins when the files are sent.
 */

import { call } from "./api.js";
import { h, replace } from "./dom.js";

interface Entry {
  kind: string;
  email: string;
  devices: number;
}

const WAIT_MS = 200;
const SHOWN = 8;

/** Split "a@x, b@y, ca" into the addresses already typed ("a@x, b@y, ") and the one being typed. */
export function lastAddress(text: string): { head: string; typing: string } {
  const match = /^(.*[,;\s])?([^,;\s]*)$/s.exec(text);
  return { head: match?.[1] ?? "", typing: match?.[2] ?? text };
}

/** Keep `list` (the input's datalist) filled with whole values: what is typed, completed. */
export function suggest(input: HTMLInputElement, list: HTMLDataListElement, pinned: string[]): void {
  let asked = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const show = (head: string, emails: string[]): void => {
    const unique = [...new Set(emails)].slice(0, SHOWN);
    replace(list, ...unique.map((email) => h("option", { value: `${head}${email}` })));
  };
  input.addEventListener("input", () => {
    clearTimeout(timer);
    const { head, typing } = lastAddress(input.value);
    const needle = typing.toLowerCase();
    const local = pinned.filter((email) => email.includes(needle));
    show(head, local);
    if (needle.length < 2) return;
    const mine = ++asked;
    timer = setTimeout(() => {
      call<Entry[]>("GET", `/api/v1/directory?${new URLSearchParams({ q: needle, limit: String(SHOWN) })}`).then(
        (found) => mine === asked && show(head, [...local, ...found.map((entry) => entry.email)]),
        () => undefined, // suggestions are a convenience: a refusal leaves the pinned ones
      );
    }, WAIT_MS);
  });
}
