// Tabs (WAI-ARIA tabs pattern): one tab stop for the tab list, arrow keys / Home / End move between tabs
// and activate them; the chosen tab is kept in the URL fragment (#documents, #ask, #models).

export class Tabs {
  constructor(tablist, onChange) {
    this.tabs = [...tablist.querySelectorAll("[role=tab]")];
    this.onChange = onChange;
    this.current = null;
    for (const tab of this.tabs) {
      tab.addEventListener("click", () => this.select(tab.dataset.tab, { focus: false }));
      tab.addEventListener("keydown", (e) => this._keys(e, tab));
    }
    window.addEventListener("hashchange", () => {
      const name = location.hash.slice(1);
      if (this._tab(name) && name !== this.current) this.select(name, { focus: false, updateHash: false });
    });
  }

  _tab(name) {
    return this.tabs.find((t) => t.dataset.tab === name) || null;
  }

  start(fallback) {
    const name = location.hash.slice(1);
    this.select(this._tab(name) ? name : fallback, { focus: false, updateHash: false });
  }

  select(name, { focus = true, updateHash = true } = {}) {
    const chosen = this._tab(name);
    if (!chosen) return;
    const previous = this.current;
    for (const tab of this.tabs) {
      const selected = tab === chosen;
      tab.setAttribute("aria-selected", String(selected));
      tab.tabIndex = selected ? 0 : -1;
      document.getElementById(tab.getAttribute("aria-controls")).hidden = !selected;
    }
    if (focus) chosen.focus();
    this.current = name;
    if (updateHash && location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
    if (previous !== name) this.onChange(name, previous);
  }

  _keys(event, tab) {
    const i = this.tabs.indexOf(tab);
    let next = null;
    if (event.key === "ArrowRight") next = this.tabs[(i + 1) % this.tabs.length];
    else if (event.key === "ArrowLeft") next = this.tabs[(i - 1 + this.tabs.length) % this.tabs.length];
    else if (event.key === "Home") next = this.tabs[0];
    else if (event.key === "End") next = this.tabs[this.tabs.length - 1];
    if (next) {
      event.preventDefault();
      this.select(next.dataset.tab);
    }
  }
}
