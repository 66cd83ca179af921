/**
 * The app's paths (src/app/router.ts): a group's page is `/app/groups/ORGANISATION/GROUP`, and
 * only a name a group can have leads to it.
 */

import { describe, expect, it, vi } from "vitest";

vi.stubGlobal("location", { pathname: "/app/inbox" });
const { href, parse } = await import("../src/app/router.js");

describe("the paths of groups", () => {
  it("leads to the list and to a group's page, and back", () => {
    expect(parse("/app/groups")).toEqual({ page: "groups" });
    const route = parse("/app/groups/ars-idf/veille");
    expect(route).toEqual({ page: "group", organisation: "ars-idf", group: "veille" });
    expect(href(route)).toBe("/app/groups/ars-idf/veille");
    expect(href({ page: "groups" })).toBe("/app/groups");
  });

  it("finds no page for a name no group can have", () => {
    for (const path of ["/app/groups/ars-idf", "/app/groups/ARS/veille", "/app/groups/-a/b", "/app/groups/a/b/c", "/app/groups/a%2Fb/c", "/app/groups/a/.."]) {
      expect(parse(path)).toEqual({ page: "notfound" });
    }
  });
});
