/**
 * A group's page and its administration from the browser (src/app/membership.ts), and what this
 * browser pins of a group's name (src/app/groups.ts), against a server played here that keeps
 * the changes posted to it: a founder's first change signs change 0 first, exactly as
 * `pli groups add` does, so that the changes posted are the vectors' chain, signature for
 * signature; and a name the server now gives to another group is refused until forgotten.
 */

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { IntegrityError, TrustError, UsageError } from "../src/crypto/errors.js";
import { digest, emptyState, signChange } from "../src/crypto/groups.js";
import { TamperingError } from "../src/crypto/keylog.js";
import type { Identity, Signed } from "../src/crypto/keys.js";
import { ApiError } from "../src/app/api.js";
import { checkPinned, forgetGroup, GroupRefused, GroupReplaced, groupPin, pinnedId, provedGroup } from "../src/app/groups.js";
import { canAdminister, changeGroup, myGroups, viewGroup } from "../src/app/membership.js";
import { PinsDamaged } from "../src/app/trust.js";
import { alice, changeEntry, Log, playServer, published, refusal, serve, V } from "./played.js";

const G = V.group_changes;
const CHAIN = G.changes.map((c) => c.signed);
const { alice: ALICE, bob: BOB } = G.bundles;
const ME = "alice@lab.example";
const OTHER_ID = "0123456789abcdef0123456789abcdef";

/** Group `name` on the played server: its changes grow with what is posted, unchecked (the
 * checks under test are the browser's), each logged in a key log that grows with them. */
class PlayedGroup {
  readonly posted: Signed[] = [];
  refuse: Response | null = null;
  /** Applies what is posted but shows the history as it was. */
  hides = false;

  constructor(
    readonly changes: Signed[] = [],
    readonly id: string = G.group,
    /** Changes the key log holds before this group's (another group's, or wiped ones). */
    readonly before: Signed[] = [],
  ) {}

  log(): Log {
    return new Log([published(ALICE), published(BOB), ...[...this.before, ...this.changes].map(changeEntry)]);
  }

  async answer(url: URL): Promise<Record<string, unknown>> {
    const log = this.log();
    const size = url.searchParams.get("log_size");
    return {
      id: this.id,
      name: G.name,
      title: "Qualité",
      organisation: { slug: "lab", name: "Laboratoire" },
      founder: ME,
      changes: this.changes,
      members: [{ email: "mallory@evil.example", role: "admin" }],
      signers: this.changes.length ? [{ bundle: ALICE, proof: log.proof(0) }] : [],
      entries: this.changes.map((_, seq) => log.proof(2 + this.before.length + seq)),
      log: { head: await log.head(), consistency: size === null ? null : log.consistency(Number(size)) },
    };
  }

  post(body: unknown): unknown {
    if (this.refuse) return this.refuse;
    const change = (body as { change: Signed }).change;
    this.posted.push(change);
    if (!this.hides) this.changes.push(change);
    return { name: G.name, seq: this.changes.length - 1, log_index: this.log().leaves.length - 1 };
  }

  /** Serve this group at lab/qualite, and the keys of Alice, who signs its changes. */
  play(): this {
    serve("/api/v1/users/alice@lab.example/devices", async (url) => {
      const log = this.log();
      const size = url.searchParams.get("log_size");
      const consistency = size === null ? null : log.consistency(Number(size));
      return { email: ME, devices: [ALICE], approvals: [null], log: { head: await log.head(), consistency, proofs: [log.proof(0)] } };
    });
    serve("/api/v1/groups/lab/qualite", (url) => this.answer(url));
    serve("/api/v1/groups/lab/qualite/changes", (_url, request) => (request.method === "POST" ? this.post(request.body) : refusal(405, "Method Not Allowed", "")));
    return this;
  }
}

let me: Identity;

beforeEach(async () => {
  playServer();
  me = await alice();
});

afterEach(() => vi.unstubAllGlobals());

async function caught(attempt: Promise<unknown>): Promise<unknown> {
  return attempt.then(
    () => null,
    (error: unknown) => error,
  );
}

describe("a group's page", () => {
  it("shows the members the history proves, never the server's list, and pins the history", async () => {
    new PlayedGroup(CHAIN.slice(0, 2)).play();
    const view = await viewGroup("group:lab/qualite", ME);
    expect(Object.fromEntries(view.state.members)).toEqual({ [ME]: "admin", "bob@ars.example": "member" });
    expect(view).toMatchObject({ id: G.group, name: G.name, title: "Qualité", organisation: "Laboratoire", founder: ME, founderProved: true, firstUse: true });
    expect(groupPin(G.group)).toEqual({ genesis: digest(CHAIN[0]), seq: 1, head: digest(CHAIN[1]) });
    expect(pinnedId(G.name)).toBe(G.group);
    expect((await viewGroup("lab/qualite", ME)).firstUse).toBe(false);
  });

  it("shows a group with no change yet, pinning nothing", async () => {
    new PlayedGroup().play();
    const view = await viewGroup("lab/qualite", ME);
    expect(view.state.members.size).toBe(0);
    expect(view.state.digests).toEqual([]);
    expect(view).toMatchObject({ founder: ME, founderProved: false });
    expect(localStorage.length).toBe(1); // the key log's head, nothing of the group
  });

  it("lets its administrators, or its founder before any change, change it", async () => {
    const founding = new PlayedGroup().play();
    const empty = await viewGroup("lab/qualite", ME);
    expect(canAdminister(empty, ME)).toBe(true);
    expect(canAdminister(empty, "bob@ars.example")).toBe(false);
    founding.changes.push(...CHAIN.slice(0, 2));
    const grown = await viewGroup("lab/qualite", ME);
    expect(canAdminister(grown, " Alice@Lab.example")).toBe(true);
    expect(canAdminister(grown, "bob@ars.example")).toBe(false);
    expect(canAdminister({ ...empty, founder: "" }, ME)).toBe(false);
  });
});

describe("changing a group", () => {
  it("signs its founder in first, then the change asked: the vectors' chain", async () => {
    const group = new PlayedGroup().play();
    const added = await changeGroup(me, "group:lab/qualite", "add", "Bob@ars.example ", "member");
    expect(group.posted).toEqual(CHAIN.slice(0, 2));
    expect(Object.fromEntries(added.state.members)).toEqual({ [ME]: "admin", "bob@ars.example": "member" });
    const removed = await changeGroup(me, "lab/qualite", "remove", "bob@ars.example");
    expect(group.posted).toEqual(CHAIN);
    expect(Object.fromEntries(removed.state.members)).toEqual({ [ME]: "admin" });
    expect(groupPin(G.group)).toEqual({ genesis: digest(CHAIN[0]), seq: 2, head: digest(CHAIN[2]) });
  });

  it("signs only change 0 when the founder adds themself as administrator", async () => {
    const group = new PlayedGroup().play();
    const view = await changeGroup(me, "lab/qualite", "add", ME, "admin");
    expect(group.posted).toEqual(CHAIN.slice(0, 1));
    expect(Object.fromEntries(view.state.members)).toEqual({ [ME]: "admin" });
  });

  it("signs the next change of a group already founded, linked to its last one", async () => {
    const group = new PlayedGroup(CHAIN.slice(0, 2)).play();
    const view = await changeGroup(me, "lab/qualite", "add", "bob@ars.example", "admin");
    expect(group.posted).toHaveLength(1);
    expect(group.posted[0]?.doc).toMatchObject({ seq: 2, prev: digest(CHAIN[1]), action: "add", email: "bob@ars.example", role: "admin", by: ME });
    expect(view.state.members.get("bob@ars.example")).toBe("admin");
  });

  it("posts nothing the group would refuse", async () => {
    const group = new PlayedGroup(CHAIN.slice(0, 2)).play();
    expect(await caught(changeGroup(me, "lab/qualite", "add", "bob@ars.example", "member"))).toBeInstanceOf(UsageError);
    expect(await caught(changeGroup(me, "lab/qualite", "remove", ME))).toBeInstanceOf(UsageError);
    expect(await caught(changeGroup(me, "lab/qualite", "add", "nobody", "member"))).toBeInstanceOf(UsageError);
    expect(group.posted).toEqual([]);
  });

  it("posts not even change 0 when the change asked would be refused", async () => {
    const group = new PlayedGroup().play();
    expect(await caught(changeGroup(me, "lab/qualite", "remove", "bob@ars.example"))).toBeInstanceOf(UsageError);
    expect(group.posted).toEqual([]);
  });

  it("leaves starting a group to its founder", async () => {
    const group = new PlayedGroup().play();
    serve("/api/v1/groups/lab/qualite", async (url) => ({ ...(await group.answer(url)), founder: "bob@ars.example" }));
    const error = await caught(changeGroup(me, "lab/qualite", "add", "bob@ars.example", "member"));
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toContain("only its founder starts it");
    expect(group.posted).toEqual([]);
  });

  it("finds what it posted in the history afterwards", async () => {
    const group = new PlayedGroup(CHAIN.slice(0, 1)).play();
    group.hides = true;
    expect(await caught(changeGroup(me, "lab/qualite", "add", "bob@ars.example", "member"))).toBeInstanceOf(TamperingError);
    expect(group.posted).toEqual([CHAIN[1]]);
  });

  it("passes on the server's refusal as it said it", async () => {
    const group = new PlayedGroup(CHAIN.slice(0, 1)).play();
    group.refuse = refusal(422, "Unprocessable", "carol@ars.example has no account on this server");
    const error = await caught(changeGroup(me, "lab/qualite", "add", "carol@ars.example", "member"));
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).message).toBe("carol@ars.example has no account on this server");
  });

  it("does not sign on a history that differs from the one pinned", async () => {
    const group = new PlayedGroup(CHAIN.slice(0, 2)).play();
    await viewGroup("lab/qualite", ME);
    group.changes.splice(1);
    expect(await caught(changeGroup(me, "lab/qualite", "add", "carol@ars.example", "member"))).toBeInstanceOf(IntegrityError);
    expect(group.posted).toEqual([]);
  });
});

describe("a group's name, pinned", () => {
  /** The same name, now a group of another id, founded anew by Alice; the key log goes on. */
  async function recreated(): Promise<PlayedGroup> {
    const founding = await signChange(me, emptyState(OTHER_ID, G.name), "add", ME, "admin");
    return new PlayedGroup([founding], OTHER_ID, CHAIN).play();
  }

  it("refuses a name the server now gives to another group, for a send and on its page", async () => {
    new PlayedGroup([...CHAIN]).play();
    await provedGroup("group:lab/qualite", ME);
    await recreated();
    const refused = await caught(provedGroup("group:lab/qualite", ME));
    expect(refused).toBeInstanceOf(GroupRefused);
    const problem = (refused as GroupRefused).problem;
    expect(problem).toBeInstanceOf(GroupReplaced);
    expect(problem).toBeInstanceOf(TrustError);
    expect(problem.message).toContain("group lab/qualite is not the group this browser sent to before: the server now gives it another identity and history");
    expect(problem.message).toContain("Ask its administrator whether it was recreated");
    expect(await caught(viewGroup("lab/qualite", ME))).toBeInstanceOf(GroupReplaced);
    expect(pinnedId(G.name)).toBe(G.group);
    expect(groupPin(OTHER_ID)).toBeNull();
  });

  it("accepts the other group once the user forgot the name, and pins it instead", async () => {
    new PlayedGroup([...CHAIN]).play();
    await provedGroup("lab/qualite", ME);
    await recreated();
    expect(forgetGroup(G.name)).toBe(true);
    expect(groupPin(G.group)).toBeNull();
    expect(pinnedId(G.name)).toBeNull();
    const group = await provedGroup("lab/qualite", ME);
    expect(group).toMatchObject({ id: OTHER_ID, firstUse: true });
    expect(pinnedId(G.name)).toBe(OTHER_ID);
    expect(forgetGroup("lab/autre")).toBe(false);
  });

  it("forgets the history of the id the server gives now, pinned without its name", async () => {
    new PlayedGroup([...CHAIN]).play();
    await provedGroup("lab/qualite", ME);
    localStorage.removeItem(`pli:group-name:${G.name}`); // pinned before names were
    expect(forgetGroup(G.name, G.group)).toBe(true);
    expect(groupPin(G.group)).toBeNull();
  });

  it("refuses a pinned group whose history the server now shows empty", async () => {
    const group = new PlayedGroup([...CHAIN]).play();
    await viewGroup("lab/qualite", ME);
    group.before.push(...group.changes.splice(0)); // the key log still holds them
    const refused = await caught(viewGroup("lab/qualite", ME));
    expect(refused).toBeInstanceOf(TamperingError);
    expect((refused as Error).message).toContain("membership history of group lab/qualite differs");
    expect(await caught(changeGroup(me, "lab/qualite", "add", ME, "admin"))).toBeInstanceOf(TamperingError);
    expect(group.posted).toEqual([]);
  });

  it("checks the name before the history, as the command line does", async () => {
    const state = { ...emptyState(OTHER_ID, G.name), digests: [digest(CHAIN[0])] };
    localStorage.setItem(`pli:group-name:${G.name}`, G.group);
    expect(() => checkPinned(state)).toThrow(GroupReplaced);
    expect(() => checkPinned(emptyState(OTHER_ID, G.name))).toThrow(GroupReplaced);
    expect(checkPinned(emptyState(G.group, G.name))).toBe(true);
  });

  it("stops on a damaged name pin rather than pin again", async () => {
    localStorage.setItem(`pli:group-name:${G.name}`, "not an id");
    new PlayedGroup([...CHAIN]).play();
    expect(await caught(provedGroup("lab/qualite", ME))).toBeInstanceOf(PinsDamaged);
  });
});

describe("the account's groups", () => {
  it("lists what the server lists, by name, and nothing malformed", async () => {
    const items = [
      { name: "lab/qualite", title: "Qualité", role: "admin" },
      { name: "ars-idf/veille", title: "Veille sanitaire", role: "member" },
      { name: "x/y", title: "Owner", role: "owner" },
      { title: "no name", role: "member" },
    ];
    serve("/api/v1/me/groups", () => ({ items }));
    expect(await myGroups()).toEqual([items[1], items[0]]);
  });
});
