import { describe, expect, it } from "vitest";

import { lastAddress } from "../src/app/directory.js";

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
