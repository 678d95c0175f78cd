// A modal yes/no question (deleting a store or a file). Escape or Cancel answers no; focus returns to the
// control that asked.

import { h, uid } from "./dom.js";

let instance = null;

export function confirmAction(message, confirmLabel = "Delete") {
  if (!instance) instance = new ConfirmDialog();
  return instance.ask(message, confirmLabel);
}

class ConfirmDialog {
  constructor() {
    const titleId = uid("confirm-title");
    this.message = h("p", { id: uid("confirm-msg") });
    this.ok = h("button", { type: "button", class: "button danger", "data-testid": "confirm-ok",
                            onclick: () => this.dialog.close("ok") }, "Delete");
    this.cancel = h("button", { type: "button", class: "button secondary", "data-testid": "confirm-cancel",
                                onclick: () => this.dialog.close("cancel") }, "Cancel");
    this.dialog = h("dialog", { class: "confirm-dialog", "aria-labelledby": titleId,
                                "aria-describedby": this.message.id, "data-testid": "confirm-dialog" },
      h("h2", { id: titleId }, "Are you sure?"), this.message, h("div", { class: "actions" }, this.ok, this.cancel));
    this.dialog.addEventListener("close", () => {
      const resolve = this.resolve;
      this.resolve = null;
      if (this.returnFocus && this.returnFocus.isConnected) this.returnFocus.focus();
      if (resolve) resolve(this.dialog.returnValue === "ok");
    });
    document.body.append(this.dialog);
  }

  ask(message, confirmLabel) {
    this.message.textContent = message;
    this.ok.textContent = confirmLabel;
    this.returnFocus = document.activeElement;
    this.dialog.returnValue = "";
    this.dialog.showModal();
    this.cancel.focus(); // the safe choice has focus
    return new Promise((resolve) => { this.resolve = resolve; });
  }
}
