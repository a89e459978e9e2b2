// Renders a label config on a sample item with the Label Studio front end
// (window.LabelStudio from @heartexlabs/label-studio 1.4.0), for the live
// preview of the project form. One preview at a time: each render replaces it.
window.LabelPreview = (function () {
  "use strict";
  var current = null;
  var IMAGE_URL = /\.(jpe?g|png|webp|gif)(\?.*)?$/i;
  var probed = {};  // url -> Promise<bool>: can the browser load this image?

  // A drawn stand-in for a sample image that cannot be loaded (the ready
  // configs' samples are served by /projects/samples/, but a requester may
  // type any URL), so that image configs still preview their tools.
  var PLACEHOLDER = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(
    '<svg xmlns="http://www.w3.org/2000/svg" width="640" height="400">' +
    '<rect width="640" height="400" fill="#dfe3ea"/>' +
    '<path d="M0 330 L180 200 L300 290 L420 170 L640 330 L640 400 L0 400 Z" fill="#c3cad6"/>' +
    '<circle cx="520" cy="90" r="40" fill="#c3cad6"/>' +
    '<text x="320" y="60" font-family="sans-serif" font-size="22" fill="#5b6475" text-anchor="middle">sample image</text>' +
    "</svg>");

  // Half a second of silence as a WAV file, the stand-in for a sample sound
  // that cannot be loaded: Label Studio's audio player throws an uncaught
  // "Unable to decode audio data" on a missing file.
  var AUDIO_URL = /\.(wav|mp3|ogg|flac|m4a)(\?.*)?$/i;
  var SILENCE = (function () {
    var rate = 8000, samples = rate / 2, bytes = new DataView(new ArrayBuffer(44 + samples * 2));
    function text(at, s) { for (var i = 0; i < s.length; i++) bytes.setUint8(at + i, s.charCodeAt(i)); }
    text(0, "RIFF"); bytes.setUint32(4, 36 + samples * 2, true); text(8, "WAVEfmt ");
    bytes.setUint32(16, 16, true); bytes.setUint16(20, 1, true); bytes.setUint16(22, 1, true);
    bytes.setUint32(24, rate, true); bytes.setUint32(28, rate * 2, true); bytes.setUint16(32, 2, true);
    bytes.setUint16(34, 16, true); text(36, "data"); bytes.setUint32(40, samples * 2, true);
    var raw = "", view = new Uint8Array(bytes.buffer);
    for (var i = 0; i < view.length; i++) raw += String.fromCharCode(view[i]);
    return "data:audio/wav;base64," + btoa(raw);
  })();

  function sounds(url) {
    if (!probed[url]) {
      probed[url] = fetch(url, { method: "HEAD", credentials: "same-origin" })
        .then(function (r) { return r.ok; }, function () { return false; });
    }
    return probed[url];
  }

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
      return typeof data[k] === "string" && (IMAGE_URL.test(data[k]) || AUDIO_URL.test(data[k])) &&
        data[k].indexOf("data:") !== 0;
    });
    return Promise.all(keys.map(function (k) {
      return AUDIO_URL.test(data[k]) ? sounds(data[k]) : loads(data[k]);
    })).then(function (ok) {
      var copy = Object.assign({}, data);
      var replaced = [];
      keys.forEach(function (k, i) {
        if (!ok[i]) { replaced.push(data[k]); copy[k] = AUDIO_URL.test(data[k]) ? SILENCE : PLACEHOLDER; }
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
