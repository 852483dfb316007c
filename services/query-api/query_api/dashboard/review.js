// The printable review pack in a browser: the same server-rendered HTML as the Monday mail (GET /dashboard/review),
// fetched with the token the dashboard keeps in this tab's session storage, its body placed here (this page's
// stylesheet, review.css, carries the print rules; the mail's inline style is not used, as the CSP forbids it).
"use strict";

const TOKEN_KEY = "sellthrough.token";

async function load() {
  const status = document.getElementById("status");
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) {
    status.textContent = "No token in this tab: open the dashboard and enter it first.";
    return;
  }
  const response = await fetch("/dashboard/review", { headers: { Authorization: "Bearer " + token } });
  if (!response.ok) {
    status.textContent = "The review pack could not be read (HTTP " + response.status + ").";
    return;
  }
  const parsed = new DOMParser().parseFromString(await response.text(), "text/html");
  const pack = document.getElementById("pack");
  // Copied first: adopting a node takes it out of the live childNodes list being walked.
  const nodes = Array.from(parsed.body.childNodes);
  pack.replaceChildren(...nodes.map((node) => document.adoptNode(node)));
  document.title = parsed.title;
  status.textContent = "";
}

document.getElementById("print").addEventListener("click", () => window.print());
load();
