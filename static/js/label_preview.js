// Renders a label config on a sample item with the Label Studio front end
// (window.LabelStudio from @heartexlabs/label-studio 1.4.0), for the live
// preview of the project form. One preview at a time: each render replaces it.
window.LabelPreview = (function () {
  "use strict";
  var current = null;
  var IMAGE_URL = /\.(jpe?g|png|webp|gif)(\?.*)?$/i;
  var probed = {};  // url -> Promise<bool>: can the browser load this image?

  // A drawn stand-in for a sample image that cannot be loaded (the ready
  // configs point at /media/samples/..., which a fresh install may not hold),
  // so that image configs still preview their tools.
  var PLACEHOLDER = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(
    '<svg xmlns="http://www.w3.org/2000/svg" width="640" height="400">' +
    '<rect width="640" height="400" fill="#dfe3ea"/>' +
    '<path d="M0 330 L180 200 L300 290 L420 170 L640 330 L640 400 L0 400 Z" fill="#c3cad6"/>' +
    '<circle cx="520" cy="90" r="40" fill="#c3cad6"/>' +
    '<text x="320" y="60" font-family="sans-serif" font-size="22" fill="#5b6475" text-anchor="middle">sample image</text>' +
    "</svg>");

  function loads(url) {
    if (!probed[url]) {
      probed[url] = new Promise(function (resolve) {
        var img = new Image();
        img.onload = function () { resolve(true); };
        img.onerror = function () { resolve(false); };
        img.src = url;
      });
    }
    return probed[url];
  }

  // The sample with every unloadable image URL replaced by the placeholder;
  // resolves to [data, [replaced urls]].
  function withImages(data) {
    var keys = Object.keys(data).filter(function (k) {
      return typeof data[k] === "string" && IMAGE_URL.test(data[k]) && data[k].indexOf("data:") !== 0;
    });
    return Promise.all(keys.map(function (k) { return loads(data[k]); })).then(function (ok) {
      var copy = Object.assign({}, data);
      var replaced = [];
      keys.forEach(function (k, i) {
        if (!ok[i]) { replaced.push(data[k]); copy[k] = PLACEHOLDER; }
      });
      return [copy, replaced];
    });
  }

  function clear(holder) {
    if (current) {
      try { current.destroy(); } catch (ignored) { /* a broken render may not tear down */ }
      current = null;
    }
    holder.textContent = "";
  }

  // onError(message) is called with words when the front end cannot render.
  function render(holder, config, data, onError) {
    clear(holder);
    if (typeof window.LabelStudio !== "function") {
      onError("The Label Studio front end did not load, so there is no preview.");
      return;
    }
    var el = document.createElement("div");
    holder.appendChild(el);
    var failed = false;
    function fail(message) {
      if (failed) return;
      failed = true;
      clear(holder);
      onError("The preview cannot show this config: " + String(message).split("\n")[0]);
    }
    // Label Studio reports some problems (a tag it has no model for) from
    // inside its first render, after the constructor has returned.
    function onWindowError(event) {
      if (!el.isConnected) return;
      event.preventDefault();
      fail(event.message || (event.error && event.error.message) || "unknown error");
    }
    window.addEventListener("error", onWindowError);
    setTimeout(function () { window.removeEventListener("error", onWindowError); }, 1500);
    try {
      current = new window.LabelStudio(el, {
        config: config,
        interfaces: [],  // the labeling area only: no submit buttons in a preview
        user: { pk: 1, firstName: "Preview", lastName: "" },
        task: { id: 1, data: data, annotations: [], predictions: [] },
        onLabelStudioLoad: function (ls) {
          // An empty annotation to label, as an annotator would start with.
          var annotation = ls.annotationStore.addAnnotation({ userGenerate: true });
          ls.annotationStore.selectAnnotation(annotation.id);
        },
      });
    } catch (error) {
      fail(error.message);
    }
  }

  return { render: render, clear: clear, withImages: withImages, PLACEHOLDER: PLACEHOLDER };
})();
