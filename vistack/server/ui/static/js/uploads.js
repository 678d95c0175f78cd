// Uploads: gather files from a drop (files and whole folders), the file picker or the folder picker, upload
// each (POST /v1/files) and attach them to a store in batches (POST /v1/vector_stores/{id}/file_batches).

import { enc } from "./api.js";

const MAX_FILES = 2000;
const BATCH = 500;

/** Hidden and system files in picked folders are not documents. */
function wanted(name) {
  return !name.startsWith(".") && name !== "Thumbs.db" && name !== "desktop.ini";
}

/** Files of a file input (a folder picker gives every file under the folder, with webkitRelativePath). */
export function filesFromInput(input) {
  return [...(input.files || [])].filter((f) => wanted(f.name)).map((file) => ({
    file, path: file.webkitRelativePath || file.name,
  }));
}

/** Files of a drop: plain files, and every file under dropped folders (recursively; at most MAX_FILES, `truncated` set when cut). */
export async function filesFromDrop(dataTransfer) {
  const entries = [...(dataTransfer.items || [])]
    .map((item) => (item.kind === "file" && item.webkitGetAsEntry ? item.webkitGetAsEntry() : null));
  if (!entries.some(Boolean)) {
    return [...(dataTransfer.files || [])].filter((f) => wanted(f.name)).map((file) => ({ file, path: file.name }));
  }
  const out = [];
  const walk = async (entry, prefix) => {
    if (!entry || !wanted(entry.name)) return;
    if (out.length >= MAX_FILES) { out.truncated = true; return; } // the caller says the drop was cut
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
      out.push({ file, path: prefix + entry.name });
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      // readEntries returns the folder in pieces: call it until it returns nothing
      for (;;) {
        const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
        if (!batch.length) break;
        for (const child of batch) await walk(child, `${prefix}${entry.name}/`);
      }
    }
  };
  for (const entry of entries) await walk(entry, "");
  return out;
}

/**
 * Upload `items` ({file, path}) and attach them to the store.
 * `report(item, state, detail)` is called as each file moves: "uploading", "uploaded", "failed", "attached".
 * Returns {uploaded: [{item, file}], failed: [{item, error}]}.
 */
export async function uploadAndAttach(api, storeId, items, { attributes, report, concurrency = 3 }) {
  const uploaded = [];
  const failed = [];
  const skip = (item, reason) => {
    const error = new Error(reason);
    failed.push({ item, error });
    report(item, "failed", error);
  };
  const queue = items.slice(0, MAX_FILES);
  for (const item of items.slice(MAX_FILES)) skip(item, `not uploaded: at most ${MAX_FILES} files at a time`);
  const worker = async () => {
    while (queue.length) {
      const item = queue.shift();
      report(item, "uploading");
      try {
        const file = await api.uploadFile(item.file);
        uploaded.push({ item, file });
        report(item, "uploaded", file);
      } catch (error) {
        failed.push({ item, error });
        report(item, "failed", error);
        if (error && error.name === "SignInCancelled") {
          for (const rest of queue.splice(0)) skip(rest, "not uploaded: sign-in was cancelled");
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, queue.length) }, worker));
  for (let i = 0; i < uploaded.length; i += BATCH) {
    const part = uploaded.slice(i, i + BATCH);
    const body = { file_ids: part.map((u) => u.file.id) };
    if (attributes && Object.keys(attributes).length) body.attributes = attributes;
    try {
      await api.post(`/v1/vector_stores/${enc(storeId)}/file_batches`, body);
      for (const u of part) report(u.item, "attached", u.file);
    } catch (error) {
      for (const u of part) {
        failed.push({ item: u.item, error });
        report(u.item, "failed", error);
      }
    }
  }
  return { uploaded, failed };
}
