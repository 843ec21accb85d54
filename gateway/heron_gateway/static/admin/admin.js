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
