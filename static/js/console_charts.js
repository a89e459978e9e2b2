// The operator console's charts, drawn as plain SVG from our JSON endpoints.
// Project pages: <div data-progress-src> holding [data-chart=<field>] boxes.
// Fairness page: [data-histogram=<currency>] boxes with data-src.
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var W = 760, H = 220, PAD = { left: 48, right: 12, top: 12, bottom: 28 };

  function el(name, attrs, text) {
    var node = document.createElementNS(NS, name);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function niceMax(value) {
    if (!(value > 0)) return 1;
    var power = Math.pow(10, Math.floor(Math.log10(value)));
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * power >= value) return steps[i] * power;
    return 10 * power;
  }

  function fmt(value) {
    if (value === null || value === undefined) return "";
    return Math.abs(value) >= 100 || Number.isInteger(value) ? String(Math.round(value)) : value.toFixed(2);
  }

  function frame(svg, max, labels) {
    var innerH = H - PAD.top - PAD.bottom;
    for (var i = 0; i <= 4; i++) {
      var y = PAD.top + innerH - innerH * i / 4;
      svg.appendChild(el("line", { class: i ? "grid" : "axis", x1: PAD.left, x2: W - PAD.right, y1: y, y2: y }));
      svg.appendChild(el("text", { class: "tick", x: PAD.left - 6, y: y + 4, "text-anchor": "end" }, fmt(max * i / 4)));
    }
    var every = Math.max(1, Math.ceil(labels.length / 8));
    labels.forEach(function (label, i) {
      if (i % every) return;
      var x = xAt(i, labels.length);
      svg.appendChild(el("text", { class: "tick", x: x, y: H - 8, "text-anchor": "middle" }, label));
    });
  }

  function xAt(i, n) {
    var innerW = W - PAD.left - PAD.right;
    return PAD.left + (n <= 1 ? innerW / 2 : innerW * (i + 0.5) / n);
  }

  function yAt(value, max) {
    var innerH = H - PAD.top - PAD.bottom;
    return PAD.top + innerH - innerH * (value / max);
  }

  function newSvg(title) {
    var svg = el("svg", { class: "chart", viewBox: "0 0 " + W + " " + H, role: "img" });
    svg.appendChild(el("title", {}, title));
    return svg;
  }

  function line(box, labels, values, fixedMax) {
    var known = values.filter(function (v) { return v !== null && v !== undefined; });
    var max = fixedMax || niceMax(Math.max.apply(null, known.concat([0])));
    var svg = newSvg(box.parentNode.querySelector("figcaption").textContent);
    frame(svg, max, labels);
    var path = "", pen = false;
    values.forEach(function (v, i) {
      if (v === null || v === undefined) { pen = false; return; }
      var x = xAt(i, values.length), y = yAt(v, max);
      path += (pen ? " L" : " M") + x.toFixed(1) + " " + y.toFixed(1);
      pen = true;
      var dot = el("circle", { class: "dot", cx: x, cy: y, r: values.length > 60 ? 1.5 : 3 });
      dot.appendChild(el("title", {}, labels[i] + ": " + fmt(v)));
      svg.appendChild(dot);
    });
    if (path) svg.insertBefore(el("path", { class: "series", d: path.trim() }), svg.querySelector("circle"));
    return svg;
  }

  function bars(box, labels, values, options) {
    options = options || {};
    var max = niceMax(Math.max.apply(null, values.concat([0])));
    var svg = newSvg(box.parentNode.querySelector("figcaption").textContent);
    frame(svg, max, labels);
    var slot = (W - PAD.left - PAD.right) / Math.max(values.length, 1);
    values.forEach(function (v, i) {
      var y = yAt(v, max), width = Math.min(slot * 0.76, 56);
      var bar = el("rect", { class: "bar" + (options.below && options.below[i] ? " below" : ""),
        x: PAD.left + slot * i + (slot - width) / 2, y: y, width: width, height: Math.max(0, yAt(0, max) - y) });
      bar.appendChild(el("title", {}, labels[i] + ": " + fmt(v)));
      svg.appendChild(bar);
    });
    if (options.floorAt !== undefined) {
      var x = PAD.left + slot * options.floorAt;
      svg.appendChild(el("line", { class: "floor", x1: x, x2: x, y1: PAD.top, y2: H - PAD.bottom }));
      svg.appendChild(el("text", { class: "floor-label", x: x + 4, y: PAD.top + 10 }, "pay floor"));
    }
    return svg;
  }

  function show(box, svg) {
    box.textContent = "";
    box.appendChild(svg);
  }

  function empty(box, words) {
    box.innerHTML = "";
    var p = document.createElement("p");
    p.className = "chart-empty";
    p.textContent = words;
    box.appendChild(p);
  }

  function stamp(iso, bucket) {
    var d = new Date(iso);
    var day = d.toISOString().slice(5, 10);
    return bucket === "day" ? day : day + " " + d.toISOString().slice(11, 13) + "h";
  }

  function loadProgress(root) {
    var select = document.querySelector("[data-chart-bucket]");
    var url = root.getAttribute("data-progress-src");
    if (select && select.value) url += "?bucket=" + encodeURIComponent(select.value);
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
      .then(function (answer) {
        var data = answer.body, summary = root.querySelector("[data-summary]");
        if (!answer.ok) { summary.textContent = data.detail || "The numbers could not be loaded."; return; }
        var t = data.totals;
        summary.textContent = t.items_done + " of " + t.items + " items done, " + t.labels + " labels" +
          (t.agreement === null ? "" : ", mean agreement " + t.agreement.toFixed(2)) + "; one point per " + data.bucket + " (UTC).";
        var labels = data.points.map(function (p) { return stamp(p.t, data.bucket); });
        root.querySelectorAll("[data-chart]").forEach(function (box) {
          var field = box.getAttribute("data-chart");
          if (!data.points.length) { empty(box, "No work yet."); return; }
          var values = data.points.map(function (p) { return p[field]; });
          var max = box.getAttribute("data-max") ? Number(box.getAttribute("data-max")) : 0;
          show(box, box.getAttribute("data-kind") === "bars" ? bars(box, labels, values) : line(box, labels, values, max));
        });
      })
      .catch(function () { root.querySelector("[data-summary]").textContent = "The numbers could not be loaded."; });
  }

  function money(minor) { return (minor / 100).toFixed(2); }

  function loadHistograms(boxes) {
    var url = boxes[0].getAttribute("data-src");
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (report) {
        boxes.forEach(function (box) {
          var currency = box.getAttribute("data-histogram");
          var entry = report.currencies.filter(function (c) { return c.currency === currency; })[0];
          if (!entry || !entry.histogram.length) { empty(box, "No pay floor for " + currency + "."); return; }
          var bins = entry.histogram;
          var labels = bins.map(function (b) { return b.high === null ? "≥ " + money(b.low) : money(b.low) + "–" + money(b.high); });
          var floorAt = bins.filter(function (b) { return b.below_floor; }).length;
          show(box, bars(box, labels, bins.map(function (b) { return b.count; }),
            { below: bins.map(function (b) { return b.below_floor; }), floorAt: floorAt }));
        });
      })
      .catch(function () { boxes.forEach(function (box) { empty(box, "The numbers could not be loaded."); }); });
  }

  var progress = document.querySelector("[data-progress-src]");
  if (progress) {
    loadProgress(progress);
    var select = document.querySelector("[data-chart-bucket]");
    if (select) select.addEventListener("change", function () { loadProgress(progress); });
  }
  var histograms = Array.prototype.slice.call(document.querySelectorAll("[data-histogram]"));
  if (histograms.length) loadHistograms(histograms);
})();
