// Keeps each import box (templates/projects/_macros.html) up to date: polls
// the import's status from the API until its background job has finished or failed.
(function () {
  "use strict";
  var POLL_MS = 1000;

  function where(e) {
    var text = e.file || "";
    if (e.member) text += " (" + e.member + ")";
    if (e.line) text += ", line " + e.line;
    if (e.item) text += "item " + e.item;
    return text;
  }

  function show(box, job) {
    var part = function (name) { return box.querySelector('[data-field="' + name + '"]'); };
    box.className = "import status-" + job.status;
    part("status").textContent = job.status;
    var bar = part("progress");
    if (job.rows_total === null) {
      bar.removeAttribute("value");  // an unknown total: an indeterminate bar
    } else {
      bar.max = Math.max(job.rows_total, 1);
      bar.value = job.rows_done;
    }
    part("rows").textContent = job.rows_done + " of " + (job.rows_total === null ? "?" : job.rows_total) + " rows checked";
    part("error").hidden = !job.error;
    part("error").textContent = job.error || "";
    var result = part("result");
    result.hidden = job.status !== "finished";
    if (job.status === "finished") {
      var r = job.result || {};
      result.textContent = "Added " + r.items + " items" + (r.predictions ? " with " + r.predictions + " predictions" : "") + ".";
    }
    var list = part("errors");
    list.textContent = "";
    (job.errors || []).forEach(function (e) {
      var li = document.createElement("li");
      var span = document.createElement("span");
      span.className = "where";
      span.textContent = where(e);
      li.appendChild(span);
      li.appendChild(document.createTextNode(": " + e.message));
      list.appendChild(li);
    });
  }

  function follow(box) {
    var url = box.getAttribute("data-import-url");
    function poll() {
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) throw new Error("the import's status could not be read (HTTP " + response.status + ")");
          return response.json();
        })
        .then(function (job) {
          show(box, job);
          if (job.status === "queued" || job.status === "running") setTimeout(poll, POLL_MS);
        })
        .catch(function (error) {
          var part = box.querySelector('[data-field="error"]');
          part.hidden = false;
          part.textContent = error.message + "; reload the page to try again.";
        });
    }
    var status = box.querySelector('[data-field="status"]').textContent.trim();
    if (status === "queued" || status === "running") poll();
  }

  document.querySelectorAll("[data-import-url]").forEach(follow);
})();
