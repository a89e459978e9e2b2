// The project form: fill the label config from a ready config, preview it live
// (debounced) after the server's check, and say what money and seconds amount to.
(function () {
  "use strict";
  var form = document.querySelector("form.project-form");
  if (!form) return;
  var DEBOUNCE_MS = 500;
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var config = document.getElementById("label_config");
  var sample = document.getElementById("sample-data");
  var picker = document.getElementById("template-picker");
  var preview = document.getElementById("preview");
  var checkLine = document.getElementById("config-check");
  var previewError = document.getElementById("preview-error");
  var sampleError = document.getElementById("sample-error");
  var sampleNote = document.getElementById("sample-note");
  var templates = JSON.parse(document.getElementById("templates-json").textContent);
  var initialSample = document.getElementById("sample-json");
  var timer = null;
  var sequence = 0;  // only the newest edit may draw the preview

  function say(el, text) {
    el.textContent = text || "";
    el.hidden = !text;
  }

  function isTemplate(xml) {
    return Object.keys(templates).some(function (k) { return templates[k].xml.trim() === xml.trim(); });
  }

  // --- the ready configs --------------------------------------------------
  if (picker) {
    picker.addEventListener("change", function () {
      var chosen = templates[picker.value];
      if (!chosen) return;
      if (config.value.trim() && !isTemplate(config.value) &&
          !window.confirm("Replace your label config with \u201c" + chosen.title + "\u201d?")) {
        picker.value = "";
        return;
      }
      config.value = chosen.xml;
      sample.value = JSON.stringify(chosen.sample, null, 2);
      schedule(0);
    });
  }

  // --- the sample item ----------------------------------------------------
  // The sample as a data dict with every key the config needs; null if the
  // JSON cannot be read (the reason is shown).
  function sampleData(verdict) {
    var text = sample.value.trim();
    var data = {};
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (error) {
        say(sampleError, "The sample item is not valid JSON: " + error.message);
        return null;
      }
      if (data === null || typeof data !== "object" || Array.isArray(data)) {
        say(sampleError, "The sample item must be a JSON object such as {\"text\": \"...\"}.");
        return null;
      }
      if (data.data && typeof data.data === "object") data = data.data;  // a Label Studio task
    }
    var missing = verdict.data_keys.filter(function (k) { return !(k in data); });
    missing.forEach(function (k) {
      data[k] = verdict.media_keys.indexOf(k) >= 0 ? window.LabelPreview.PLACEHOLDER : "Sample " + k + " for the preview.";
    });
    say(sampleError, "");
    if (!text) {
      sample.value = JSON.stringify(data, null, 2);
    } else if (missing.length) {
      say(sampleNote, "The sample has no " + missing.map(function (k) { return "\u201c" + k + "\u201d"; }).join(", ") +
        ": the preview shows a stand-in.");
    }
    return data;
  }

  // --- the check and the preview ------------------------------------------
  function refresh() {
    var mine = ++sequence;
    // The live check says the same as the server's error from the last save, and stays current.
    var saved = document.getElementById("label_config-error");
    if (saved) saved.hidden = true;
    checkLine.className = "check-result";
    checkLine.textContent = "Checking\u2026";
    fetch(form.getAttribute("data-check-url"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify({ label_config: config.value }),
    })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (verdict) {
        if (mine !== sequence) return;
        say(previewError, "");
        say(sampleNote, "");
        if (!verdict.ok) {
          checkLine.className = "check-result bad";
          checkLine.textContent = verdict.error;
          window.LabelPreview.clear(preview);
          preview.innerHTML = '<p class="preview-empty">No preview until the label config is valid.</p>';
          return;
        }
        checkLine.className = "check-result good";
        checkLine.textContent = "Valid config (" + verdict.kind.replace(/_/g, " ") + "). Each item needs " +
          (verdict.data_keys.length ? verdict.data_keys.join(", ") : "no data key") + ".";
        var data = sampleData(verdict);
        if (data === null) return;
        window.LabelPreview.withImages(data).then(function (found) {
          if (mine !== sequence) return;
          if (found[1].length) say(sampleNote, "Could not load " + found[1].join(", ") + ": the preview shows a stand-in.");
          window.LabelPreview.render(preview, config.value, found[0], function (message) { say(previewError, message); });
        });
      })
      .catch(function (error) {
        if (mine !== sequence) return;
        checkLine.className = "check-result bad";
        checkLine.textContent = "The config could not be checked (" + error.message + "); it is checked again when you save.";
      });
  }

  function schedule(delay) {
    clearTimeout(timer);
    timer = setTimeout(refresh, delay === undefined ? DEBOUNCE_MS : delay);
  }

  config.addEventListener("input", function () { schedule(); });
  sample.addEventListener("input", function () { schedule(); });

  // --- money and durations in words ---------------------------------------
  var currency = form.querySelector('[name="currency"]');

  function minorDigits(code) {
    try {
      return new Intl.NumberFormat("en", { style: "currency", currency: code }).resolvedOptions().maximumFractionDigits;
    } catch (error) {
      return null;  // not a currency code (yet)
    }
  }

  function moneyText(value) {
    var code = (currency ? currency.value : "USD").trim().toUpperCase();
    if (!/^-?\d+$/.test(value.trim()) || !/^[A-Z]{3}$/.test(code)) return "";
    var digits = minorDigits(code);
    if (digits === null) return "";
    var minor = Number(value.trim());
    return "= " + (minor / Math.pow(10, digits)).toFixed(digits) + " " + code;
  }

  function durationText(value) {
    if (!/^\d+$/.test(value.trim())) return "";
    var seconds = Number(value.trim());
    var parts = [];
    [["d", 86400], ["h", 3600], ["min", 60], ["s", 1]].forEach(function (unit) {
      if (seconds >= unit[1] || (!parts.length && unit[1] === 1)) {
        parts.push(Math.floor(seconds / unit[1]) + " " + unit[0]);
        seconds %= unit[1];
      }
    });
    return "= " + parts.join(" ");
  }

  function updateHints() {
    form.querySelectorAll("input[data-hint]").forEach(function (input) {
      var out = form.querySelector('[data-hint-for="' + input.name + '"]');
      out.textContent = input.getAttribute("data-hint") === "money" ? moneyText(input.value) : durationText(input.value);
    });
  }

  form.addEventListener("input", function (event) {
    if (event.target.matches("input[data-hint], [name='currency']")) updateHints();
  });
  updateHints();

  // --- start ----------------------------------------------------------------
  if (!sample.value.trim()) {
    if (initialSample) {
      sample.value = JSON.stringify(JSON.parse(initialSample.textContent), null, 2);
    } else if (picker && templates[picker.value]) {
      sample.value = JSON.stringify(templates[picker.value].sample, null, 2);
    }
  }
  schedule(0);
})();
