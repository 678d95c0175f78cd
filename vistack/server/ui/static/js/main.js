// Start-up: build the API client and the shared pieces, mount the three views, wire the tabs and sign-out.

import { Api } from "./api.js";
import { AskView } from "./ask.js";
import { AuthDialog, credentials } from "./auth.js";
import { CitationDialog } from "./citation.js";
import { announce, hideError } from "./dom.js";
import { DocumentsView } from "./documents.js";
import { PageImages } from "./images.js";
import { ChunkSource } from "./pages.js";
import { StatusView } from "./status.js";
import { FileNames, Stores } from "./stores.js";
import { Tabs } from "./tabs.js";

function start() {
  let auth = null;
  const signIn = document.getElementById("sign-in");
  const api = new Api({
    credentials,
    onUnauthorized: async (reason) => {
      const ok = await auth.ask(reason);
      signIn.hidden = ok; // cancelled: offer to sign in later
      return ok;
    },
  });
  auth = new AuthDialog(api, { onSignedIn: () => { renderSession(); announce("Signed in"); } });
  const images = new PageImages(api);
  const chunks = new ChunkSource(api);
  const stores = new Stores(api);
  const fileNames = new FileNames(api);

  let askView = null;
  const citations = new CitationDialog({ images, textFor: (cite) => askView.textFor(cite) });
  const views = {
    documents: new DocumentsView({ api, stores, fileNames, images, chunks,
                                   panel: document.getElementById("panel-documents") }),
    ask: (askView = new AskView({ api, stores, images, chunks, citations, panel: document.getElementById("panel-ask") })),
    models: new StatusView({ api, panel: document.getElementById("panel-models") }),
  };

  const signOut = document.getElementById("sign-out");
  const authState = document.getElementById("auth-state");
  function renderSession() {
    const signedIn = Boolean(credentials.get());
    signOut.hidden = !signedIn;
    if (signedIn) signIn.hidden = true;
    authState.textContent = signedIn ? "Signed in with an API key" : "";
  }
  signIn.addEventListener("click", async () => {
    if (await auth.ask("")) location.reload(); // load every view again, with the key
  });
  signOut.addEventListener("click", () => {
    credentials.clear();
    images.clear();
    sessionStorage.removeItem("vistack.ask.conversation"); // it belongs to the principal that signed out
    // start again from a clean page: every view's data came from the old key
    location.reload();
  });
  renderSession();

  document.getElementById("error-dismiss").addEventListener("click", hideError);
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !document.querySelector("dialog[open]")) hideError();
  });

  const tabs = new Tabs(document.querySelector("[role=tablist]"), (name, previous) => {
    if (previous && views[previous]) views[previous].deactivate();
    views[name].activate();
  });
  tabs.start("documents");
}

start();
