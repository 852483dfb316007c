// Money on the dashboard: the response's currency (ISO 4217, INR when a response names none), grouped the Indian
// way (en-IN: 1,23,45,678.00; tiles in lakh and crore: "₹12.3 L", "₹4.5 Cr") or the international way
// (1,234,567.00; "₹1.2M"), switched by the user and remembered in localStorage. Loaded before app.js. No dependencies.
"use strict";

const GROUPING_KEY = "sellthrough.grouping";
const GROUPINGS = { indian: "en-IN", international: "en-US" };
const LAKH = 1e5, CRORE = 1e7;

const Money = {
  currency: "INR",
  grouping: GROUPINGS[localStorage.getItem(GROUPING_KEY)] ? localStorage.getItem(GROUPING_KEY) : "indian",
  formatters: new Map(),

  setGrouping(grouping) {
    if (!GROUPINGS[grouping]) return;
    this.grouping = grouping;
    localStorage.setItem(GROUPING_KEY, grouping);
  },

  useCurrencyOf(body) {
    // A response that carries money names its currency (on the body, its total or its rows); an older server's
    // responses name none (INR then).
    const named = [body, body && body.total, body && body.rows && body.rows[0]]
      .map((o) => (o && typeof o.currency === "string" && /^[A-Z]{3}$/.test(o.currency) ? o.currency : null));
    this.currency = named.find(Boolean) || "INR";
  },

  formatter(kind, digits) {
    const key = `${this.grouping}|${this.currency}|${kind}|${digits}`;
    if (!this.formatters.has(key)) {
      const options = kind === "money"
        ? { style: "currency", currency: this.currency, minimumFractionDigits: digits, maximumFractionDigits: digits }
        : { maximumFractionDigits: digits };
      this.formatters.set(key, new Intl.NumberFormat(GROUPINGS[this.grouping], options));
    }
    return this.formatters.get(key);
  },

  full(v) {
    // Tables, tooltips: every digit, two decimals.
    return v === null || v === undefined ? "–" : this.formatter("money", 2).format(Number(v));
  },

  count(v) {
    return v === null || v === undefined ? "–" : this.formatter("count", 0).format(Number(v));
  },

  symbol() {
    const part = this.formatter("money", 0).formatToParts(0).find((p) => p.type === "currency");
    return part ? part.value : this.currency + " ";
  },

  short(v) {
    // Tiles: lakh / crore in the Indian grouping, K / M / B in the international one; below a lakh every rupee.
    if (v === null || v === undefined) return "–";
    const n = Number(v), abs = Math.abs(n), sign = n < 0 ? "-" : "";
    if (this.grouping === "indian") {
      const one = (x) => this.formatter("count", 1).format(x);
      if (abs >= CRORE) return `${sign}${this.symbol()}${one(abs / CRORE)} Cr`;
      if (abs >= LAKH) return `${sign}${this.symbol()}${one(abs / LAKH)} L`;
      return this.formatter("money", 0).format(n);
    }
    if (abs < LAKH) return this.formatter("money", 0).format(n);
    return new Intl.NumberFormat("en-US", {
      style: "currency", currency: this.currency, notation: "compact", maximumFractionDigits: 1,
    }).format(n);
  },
};
