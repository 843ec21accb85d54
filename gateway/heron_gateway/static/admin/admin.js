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

// Uploads: several files at once, chosen or dropped, each sent to the REST API with the
// session's CSRF token and shown with its own progress bar; the list reloads when all are in.
function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrf_token=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

function uploadOne(url, file, list) {
  const row = document.createElement("li");
  const name = document.createElement("span");
  name.textContent = file.name;
  const bar = document.createElement("progress");
  bar.max = 100;
  bar.value = 0;
  bar.setAttribute("aria-label", `Uploading ${file.name}`);
  row.append(name, bar);
  list.append(row);
  return new Promise((resolve) => {
    const request = new XMLHttpRequest();
    request.open("POST", url);
    request.setRequestHeader("X-CSRF-Token", csrfToken());
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) {
        bar.value = Math.round((event.loaded / event.total) * 100);
      }
    });
    request.addEventListener("load", () => {
      if (request.status === 201) {
        bar.value = 100;
        row.dataset.state = "done";
        name.textContent = `${file.name}: uploaded`;
      } else {
        row.dataset.state = "failed";
        row.classList.add("failed");
        let message = `error ${request.status}`;
        try {
          message = JSON.parse(request.responseText).error || message;
        } catch (ignored) {
          // not JSON: keep the status
        }
        name.textContent = `${file.name}: ${message}`;
      }
      resolve(request.status === 201);
    });
    request.addEventListener("error", () => {
      row.dataset.state = "failed";
      row.classList.add("failed");
      name.textContent = `${file.name}: the upload was interrupted`;
      resolve(false);
    });
    const body = new FormData();
    body.append("file", file);
    request.send(body);
  });
}

async function uploadAll(input, files) {
  const list = document.getElementById("uploads");
  const results = [];
  for (const file of files) {
    results.push(await uploadOne(input.dataset.uploadUrl, file, list));
  }
  if (results.length && results.every(Boolean)) {
    window.location.reload();
  }
}

const uploadInput = document.getElementById("upload-files");
if (uploadInput) {
  uploadInput.addEventListener("change", () => uploadAll(uploadInput, [...uploadInput.files]));
  const zone = document.getElementById("dropzone");
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    uploadAll(uploadInput, [...event.dataTransfer.files]);
  });
}

// A picker's choice fills its field (or, for a field of several values, adds to it).
document.addEventListener("click", (event) => {
  const choice = event.target.closest("[data-pick-for]");
  if (!choice) {
    return;
  }
  const input = document.getElementById(choice.dataset.pickFor);
  if (!input) {
    return;
  }
  const value = choice.dataset.pickValue;
  if (input.hasAttribute("data-multiple") && input.value.trim()) {
    const values = input.value.split(",").map((v) => v.trim()).filter(Boolean);
    if (!values.includes(value)) {
      values.push(value);
    }
    input.value = values.join(", ");
  } else {
    input.value = value;
  }
  input.dispatchEvent(new Event("input", { bubbles: true }));
  const details = choice.closest("details");
  if (details) {
    details.open = false;
  }
  input.focus();
});

// Deleting several items asks first.
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.getAttribute("data-confirm-delete");
  if (question && event.submitter && event.submitter.value === "delete" && !window.confirm(question)) {
    event.preventDefault();
  }
});
