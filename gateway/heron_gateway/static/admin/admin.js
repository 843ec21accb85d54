// Heron admin: the little the pages need beyond htmx (no inline script anywhere).
"use strict";

// A form or button with data-confirm asks before it acts (deleting, unpublishing several).
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

// After htmx swaps in new results, say so to screen readers and keep the focus sensible.
document.addEventListener("htmx:afterSwap", (event) => {
  const status = document.getElementById("results-status");
  if (status && event.target.id === "results") {
    status.textContent = status.getAttribute("data-loaded") || "";
  }
});

// A form with data-unsaved-warning asks before the page is left with unsaved changes.
for (const form of document.querySelectorAll("form[data-unsaved-warning]")) {
  let changed = false;
  form.addEventListener("input", () => { changed = true; });
  form.addEventListener("submit", () => { changed = false; });
  window.addEventListener("beforeunload", (event) => {
    if (changed) {
      event.preventDefault();
      event.returnValue = "";
    }
  });
}
