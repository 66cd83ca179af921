import { describe, expect, it } from "vitest";

import { lastAddress, needleOf, suggestionOf } from "../src/app/directory.js";

describe("lastAddress", () => {
  it("splits what is typed from the addresses before it", () => {
    expect(lastAddress("")).toEqual({ head: "", typing: "" });
    expect(lastAddress("ars")).toEqual({ head: "", typing: "ars" });
    expect(lastAddress("a@x.org, ars-v")).toEqual({ head: "a@x.org, ", typing: "ars-v" });
    expect(lastAddress("a@x.org;b@y.org ca")).toEqual({ head: "a@x.org;b@y.org ", typing: "ca" });
    expect(lastAddress("a@x.org, ")).toEqual({ head: "a@x.org, ", typing: "" });
  });

  it("keeps every character of the addresses already typed", () => {
    const text = "dr.martin@chu.example, labo+export@bio.example,\tars";
    const { head, typing } = lastAddress(text);
    expect(head + typing).toBe(text);
    expect(typing).toBe("ars");
  });
});

describe("suggestionOf", () => {
  const entry = { email: null, name: null, title: null, devices: 0, members: null };

  it("offers accounts by email, groups as group:NAME, organisations to go on typing", () => {
    expect(suggestionOf({ ...entry, kind: "user", email: "bob@ars.example", devices: 2 })).toEqual({ value: "bob@ars.example" });
    expect(suggestionOf({ ...entry, kind: "service", email: "export@lab.example", devices: 1 })).toEqual({ value: "export@lab.example" });
    const group = { ...entry, kind: "group", name: "ars-idf/veille", title: "Veille sanitaire", members: 4 } as const;
    expect(suggestionOf(group)).toEqual({ value: "group:ars-idf/veille", label: "Veille sanitaire" });
    expect(suggestionOf({ ...entry, kind: "organisation", name: "ars-idf" })).toEqual({ value: "group:ars-idf/", label: undefined });
  });

  it("offers nothing for an entry without what it needs", () => {
    expect(suggestionOf({ ...entry, kind: "user" })).toBeNull();
    expect(suggestionOf({ ...entry, kind: "group" })).toBeNull();
  });

  it("asks the directory without the group: prefix", () => {
    expect(needleOf("group:ars-v")).toBe("ars-v");
    expect(needleOf("Bob@")).toBe("bob@");
  });
});
