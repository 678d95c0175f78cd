// The web app's DOM-free helpers, run with Node's own test runner (node --test): attribute typing, filters,
// citation regions and passage spans. tests/unit/test_webapp_js.py runs this file.
import assert from "node:assert/strict";
import { test } from "node:test";

import { citedChunks, citedPage, covers, passageSpans } from "../../../vistack/server/ui/static/js/citation.js";
import { parseAttributes, typedValue } from "../../../vistack/server/ui/static/js/dom.js";
import { compileFilters } from "../../../vistack/server/ui/static/js/search.js";

test("typedValue keeps codes as strings and types what reads back the same", () => {
  assert.equal(typedValue("3"), 3);
  assert.equal(typedValue("-2"), -2);
  assert.equal(typedValue("1.5"), 1.5);
  assert.equal(typedValue("007"), "007");
  assert.equal(typedValue("0123"), "0123");
  assert.equal(typedValue("1.50"), "1.50");
  assert.equal(typedValue('"42"'), "42");
  assert.equal(typedValue("'true'"), "true");
  assert.equal(typedValue("true"), true);
  assert.equal(typedValue("false"), false);
  assert.equal(typedValue("finance"), "finance");
});

test("parseAttributes and compileFilters keep a zero-padded code a string", () => {
  assert.deepEqual(parseAttributes("code=007, year=2025; final=true"), { code: "007", year: 2025, final: true });
  assert.throws(() => parseAttributes("no equals sign"), /not key=value/);
  assert.deepEqual(compileFilters([{ key: "code", op: "eq", value: "007" }]), { type: "eq", key: "code", value: "007" });
  assert.deepEqual(compileFilters([{ key: "year", op: "in", value: "2024, 2025" }, { key: " ", op: "eq", value: "x" }]),
                   { type: "in", key: "year", value: [2024, 2025] });
  assert.equal(compileFilters([]), null);
});

test("a search hit outlines the server's passage_bbox, else its chunk; an annotation its bbox", () => {
  const hit = { file_id: "file-1", filename: "r.pdf", score: 0.5, content: [{ text: "a\nb" }],
                attributes: { page: 2, bbox: "0,0,100,100", page_size: "612,792", passage_boxes: "0-1:0,0,10,10;2-3:0,20,10,30" },
                passage_bbox: "0,20,10,30" };
  assert.deepEqual(citedPage(hit).bboxes, ["0,20,10,30"]);
  assert.deepEqual(citedPage({ ...hit, passage_bbox: null }).bboxes, ["0,0,100,100"]);
  const cite = citedPage({ type: "file_citation", file_id: "file-1", filename: "r.pdf", page: 2, bbox: "1,2,3,4" });
  assert.deepEqual([cite.bboxes, cite.page, cite.text], [["1,2,3,4"], 2, null]);
});

test("passage spans skip a contextual prefix and drop malformed or out-of-range parts", () => {
  const text = "Context.\n\nRevenue grew.\nCosts fell.";
  const spans = passageSpans(text, "14-25:0,20,10,30;0-13:0,0,10,10;bad;0-999:1,1,2,2;3-4:x", "Context.");
  assert.deepEqual(spans.map((s) => text.slice(s.start, s.end)), ["Revenue grew.", "Costs fell."]);
  assert.deepEqual(spans.map((s) => s.box), ["0,0,10,10", "0,20,10,30"]);
  assert.deepEqual(passageSpans("abc", "", undefined), []);
});

test("covers and citedChunks find the chunks a citation's boxes fall in", () => {
  assert.ok(covers("0,0,100,100", "10,10,20,20"));
  assert.ok(covers("0,0,100,100", "0,0,100.3,100"));  // boxes travel rounded
  assert.ok(!covers("0,0,100,100", "10,10,120,20"));
  assert.ok(!covers("0,0,100", "1,1,2,2"));
  const chunks = [{ text: "a", bbox: "0,0,100,50" }, { text: "b", bbox: "0,60,100,100" }];
  assert.deepEqual(citedChunks(chunks, ["10,70,20,80"]).map((c) => c.text), ["b"]);
  assert.deepEqual(citedChunks(chunks, ["10,10,20,20", "10,70,20,80"]).map((c) => c.text), ["a", "b"]);
  assert.deepEqual(citedChunks(chunks, ["500,500,600,600"]).map((c) => c.text), ["a", "b"]);
});

test("listAll follows has_more/last_id and says when it stopped before the end", async () => {
  const { Api } = await import("../../../vistack/server/ui/static/js/api.js");
  const pages = (total) => ({
    calls: 0,
    async get(path, query) {
      this.calls += 1;
      const start = query.after ? Number(query.after) + 1 : 0;
      const data = Array.from({ length: Math.min(query.limit, total - start) }, (_, i) => ({ id: String(start + i) }));
      return { data, has_more: start + data.length < total, last_id: data.length ? data.at(-1).id : null };
    },
  });
  const small = pages(250);
  const all = await Api.prototype.listAll.call(small, "/v1/x", {}, { limit: 100, maxPages: 20 });
  assert.deepEqual([all.length, all.truncated, small.calls], [250, false, 3]);
  const big = pages(5000);
  const first = await Api.prototype.listAll.call(big, "/v1/x", {}, { limit: 100, maxPages: 20 });
  assert.deepEqual([first.length, first.truncated, big.calls], [2000, true, 20]);
  const exact = pages(2000);
  const whole = await Api.prototype.listAll.call(exact, "/v1/x", {}, { limit: 100, maxPages: 20 });
  assert.deepEqual([whole.length, whole.truncated], [2000, false]);
});
