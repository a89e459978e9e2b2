// The annotator's labeling page: asks the work API for a micro-task, shows
// its items one by one in the Label Studio front end (window.LabelStudio from
// @heartexlabs/label-studio 1.4.0), keeps each item's result and active
// seconds, submits the whole micro-task and shows the next one without a page
// load. One Label Studio instance is kept per label config and re-used for
// every item (resetState / assignTask / initializeStore, as Label Studio's own
// data manager does), which is what makes the switch fast; the order of those
// calls keeps Label Studio's console free of errors (see clearLabelStudio and
// taskOf).
//
// window.workbench exposes the page's state and the measured switch times to
// tests and bench/workbench.py.
(function () {
  "use strict";

  var settings = JSON.parse(document.getElementById("workbench-settings").textContent);
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var IDLE_MS = settings.idle_seconds * 1000;
  var TICK_MS = 1000;
  var MEDIA = /^(\/media\/|https?:\/\/)/;
  var IMAGE = /\.(jpe?g|png|webp|gif|bmp)(\?.*)?$/i;
  // Config kinds that label the whole item: no regions, so no regions list.
  var WHOLE_ITEM = ["text_classification", "multi_label", "image_classification", "rating", "transcription"];

  function $(id) { return document.getElementById(id); }
  var ui = {
    root: $("workbench"), project: $("wb-project"), kind: $("wb-kind"), qualification: $("wb-qualification"),
    pay: $("wb-pay"), progress: $("wb-progress"), lease: $("wb-lease"), leaseLeft: $("wb-lease-left"),
    message: $("wb-message"), labeling: $("wb-labeling"), items: $("wb-items"), ls: $("wb-ls"),
    prediction: $("wb-prediction"),
    prev: $("wb-prev"), next: $("wb-next"), skip: $("wb-skip"),
    feedback: $("wb-feedback"), feedbackTitle: $("wb-feedback-title"), feedbackRule: $("wb-feedback-rule"),
    feedbackItems: $("wb-feedback-items"), cont: $("wb-continue"),
    idle: $("wb-idle"), idleTitle: $("wb-idle-title"), idleText: $("wb-idle-text"), again: $("wb-again"),
    instructions: $("wb-instructions"), keys: $("wb-keys"),
    skipDialog: $("wb-skip-dialog"), skipForm: $("wb-skip-form"), skipReason: $("wb-skip-reason"),
  };

  var state = {
    view: "loading",     // loading | labeling | busy | feedback | idle
    setups: {},          // project id -> set-up (config, instructions, hotkeys)
    setup: null,
    work: null,          // the work API's payload for the current assignment
    index: 0,
    results: [],         // per item: Label Studio result list, or null before it was shown
    seconds: [],         // per item: active seconds
    leaseEnd: 0,         // performance.now() at which the lease runs out
    leaseNoticed: false,
    leaseRefused: false, // the server refused a heartbeat for the lease that ran out
    lastInput: performance.now(),
    lastTick: performance.now(),
    lastBeat: 0,
    beating: false,
    ls: null,            // the LabelStudio instance
    store: null,         // its app store
    lsConfig: null,
    liveKeys: null,      // the hotkeys it bound for that config
    switching: false,    // go() is moving to another item
  };
  var page = window.workbench = { state: state, switches: [], ready: false };
  if (settings.setup) state.setups[settings.setup.id] = settings.setup;

  // --- talking to the server ---------------------------------------------------

  function url(name, id) { return settings.urls[name].replace("{id}", String(id)); }

  // Resolves to {status, body, date}; never rejects (a network failure is status 0).
  function api(method, path, body) {
    var options = { method: method, credentials: "same-origin",
                    headers: { "Accept": "application/json", "X-CSRFToken": csrf } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(path, options).then(function (response) {
      var type = response.headers.get("Content-Type") || "";
      var date = response.headers.get("Date");
      var read = type.indexOf("json") >= 0 ? response.json().catch(function () { return null; })
                                           : response.text().then(function () { return null; });
      return read.then(function (json) { return { status: response.status, body: json, date: date }; });
    }, function () {
      return { status: 0, body: null, date: null };
    });
  }

  function sentence(text) { return /[.!?]$/.test(text) ? text : text + "."; }
  function capital(text) { return text.charAt(0).toUpperCase() + text.slice(1); }

  // An API error in words: what happened and what to do.
  function words(response, doing) {
    var detail = response.body && response.body.detail;
    switch (response.status) {
      case 0: return "Could not reach the server while " + doing + ": check your connection, then try again.";
      case 401: return "You are signed out. Sign in again to keep working.";
      case 403: return capital(detail || "You may not do this.");
      case 404: return capital(sentence(detail || "Not found"));
      case 409: return capital(sentence(detail || "This work changed meanwhile"));
      case 429: case 503: return sentence(detail || "The server is busy") + " Try again in a moment.";
      default:
        if (response.status >= 500) return "Something went wrong on our side while " + doing + "; it has been logged. Try again.";
        return sentence(detail || ("The server answered " + response.status + " while " + doing));
    }
  }

  // --- messages and views -------------------------------------------------------

  function say(text, kind) {
    ui.message.hidden = !text;
    ui.message.textContent = text || "";
    ui.message.className = "wb-message" + (kind ? " " + kind : "");
  }

  function sayHTML(node, kind) {
    ui.message.hidden = false;
    ui.message.textContent = "";
    ui.message.appendChild(node);
    ui.message.className = "wb-message" + (kind ? " " + kind : "");
  }

  function show(view) {
    state.view = view;
    ui.root.dataset.state = view;
    ui.labeling.hidden = !(view === "labeling" || view === "busy");
    ui.feedback.hidden = view !== "feedback";
    ui.idle.hidden = view !== "idle" && view !== "loading";
    var working = view === "labeling";
    ui.prev.disabled = !working || state.index === 0;
    ui.next.disabled = !working;
    ui.skip.disabled = !working;
    ui.lease.hidden = !(state.work && (view === "labeling" || view === "busy"));
    ui.ls.classList.toggle("wb-frozen", view === "busy");
  }

  function idle(title, text, again) {
    stopWork();
    ui.progress.textContent = "";
    ui.idleTitle.textContent = title;
    ui.idleText.textContent = text || "";
    ui.again.hidden = !again;
    ui.again.textContent = again || "";
    show("idle");
  }

  function signInLink() {
    var p = document.createElement("span");
    p.appendChild(document.createTextNode("You are signed out. "));
    var a = document.createElement("a");
    a.href = settings.urls.login;
    a.textContent = "Sign in again";
    p.appendChild(a);
    p.appendChild(document.createTextNode(" to keep working."));
    return p;
  }

  // --- getting work ----------------------------------------------------------

  function askForWork(timing, note) {
    say("");
    if (!state.work) {
      ui.idleTitle.textContent = "Looking for work…";
      ui.idleText.textContent = "";
      ui.again.hidden = true;
      show("loading");
    }
    var path = settings.urls.next + (settings.project ? "?project=" + settings.project : "");
    return api("POST", path).then(function (response) {
      if (timing) timing.nextAt = performance.now();
      if (response.status === 200) {
        return startWork(response.body, response.date, timing).then(function () {
          if (note && state.view === "labeling") say(note, "info");
        });
      }
      if (response.status === 204) {
        idle("No work for you right now",
             settings.project ? "This project has nothing left that you can take. Other projects may have work: see your dashboard."
                              : "Every micro-task you could take is done or taken. Look again later, or see your dashboard.",
             "Look again");
        return;
      }
      if (response.status === 401) { idle("Signed out", ""); sayHTML(signInLink(), "bad"); return; }
      if (response.status === 403) { idle("No work can be given to you", words(response, "asking for work")); return; }
      idle("Could not get work", words(response, "asking for work"), "Try again");
    });
  }

  function setupFor(projectId) {
    if (state.setups[projectId]) return Promise.resolve(state.setups[projectId]);
    return api("GET", url("setup", projectId)).then(function (response) {
      if (response.status !== 200) throw new Error(words(response, "loading the project"));
      state.setups[projectId] = response.body;
      return response.body;
    });
  }

  // The lease's end on this page's clock, from the server's time when it answered.
  function leaseEndFrom(expiresIso, dateHeader, fallbackSeconds) {
    var expires = Date.parse(expiresIso);
    var serverNow = dateHeader ? Date.parse(dateHeader) : NaN;
    var left = isNaN(expires) ? fallbackSeconds * 1000
                              : expires - (isNaN(serverNow) ? Date.now() : serverNow);
    // The Date header has whole seconds: never show more than a fresh lease.
    return performance.now() + Math.min(Math.max(0, left), fallbackSeconds * 1000);
  }

  function startWork(work, date, timing) {
    return setupFor(work.project).then(function (setup) {
      state.work = work;
      state.setup = setup;
      var n = work.items.length;
      var kept = restore(work.assignment_id);
      state.results = kept ? kept.results : new Array(n).fill(null);
      state.seconds = kept ? kept.seconds : new Array(n).fill(0);
      state.index = 0;
      state.leaseEnd = leaseEndFrom(work.lease_expires_at, date, work.lease_seconds);
      state.leaseNoticed = false;
      state.leaseRefused = false;
      state.lastBeat = performance.now();
      prefetchMedia(work.items);
      showProject(setup, work);
      return renderItem(0).then(function () { show("labeling"); ready(timing); });
    }).catch(function (error) {
      idle("Could not show the work", String(error && error.message || error), "Try again");
    }).then(function () {
      if (state.work) tick();  // the lease countdown at once, not a second later
    });
  }

  function showProject(setup, work) {
    ui.project.textContent = setup.title;
    ui.kind.hidden = !setup.config_kind;
    ui.kind.textContent = (setup.config_kind || "").replace(/_/g, " ");
    ui.ls.classList.toggle("wb-whole-item", WHOLE_ITEM.indexOf(setup.config_kind) >= 0);
    ui.qualification.hidden = !(work && work.is_qualification);
    if (!work) ui.pay.textContent = "";
    else if (work.is_qualification) ui.pay.textContent = setup.qualification_pay ? "pays " + setup.qualification_pay_text : "";
    else ui.pay.textContent = "pays " + setup.pay_text + " for " + work.items.length + " item" + (work.items.length === 1 ? "" : "s");
    if (ui.instructions.dataset.project !== String(setup.id)) {
      ui.instructions.dataset.project = String(setup.id);
      ui.instructions.innerHTML = setup.instructions_html ||  // rendered and cleaned by the server (nh3)
        '<p class="muted">No instructions for this project.</p>';
    }
    // The keys Label Studio bound for this config, once it has loaded it.
    renderKeys(state.lsConfig === setup.label_config && state.liveKeys ? state.liveKeys : setup.hotkeys);
  }

  // The label hotkeys Label Studio bound, including those it gives labels
  // without one ("1", "2"... on <Labels>); null if it bound none.
  function liveHotkeys(store) {
    var keys = [];
    store.annotationStore.names.forEach(function (tag) {
      (tag.children || []).forEach(function (child) {
        if (child.hotkey) keys.push({ key: child.hotkey, label: child.alias || child.value });
      });
    });
    return keys.length ? keys : null;
  }

  function renderKeys(hotkeys) {
    ui.keys.textContent = "";
    (hotkeys || []).forEach(function (h) {
      var row = document.createElement("div");
      var dt = document.createElement("dt");
      var kbd = document.createElement("kbd");
      kbd.textContent = h.key;
      dt.appendChild(kbd);
      var dd = document.createElement("dd");
      dd.textContent = h.label;
      row.appendChild(dt);
      row.appendChild(dd);
      ui.keys.appendChild(row);
    });
  }

  function prefetchMedia(items) {
    items.forEach(function (item) {
      Object.keys(item.data || {}).forEach(function (key) {
        var value = item.data[key];
        if (typeof value === "string" && MEDIA.test(value) && IMAGE.test(value)) new Image().src = value;
      });
    });
  }

  // --- Label Studio --------------------------------------------------------------

  function predictionsOf(item) {
    return (item.predictions || []).map(function (p) {
      return { id: p.id, result: p.result, score: p.score, model_version: p.model_version };
    });
  }

  function nextTask() {
    return new Promise(function (resolve) { setTimeout(resolve, 0); });
  }

  // Take the item off screen, then, a task later, out of the store. React 17
  // disposes the observers of unmounted components in its passive effects,
  // after the current task: emptying the store before that leaves them
  // reading regions that are gone (mobx-state-tree "no longer part of a state
  // tree" warnings, and for boxes "Cannot read properties of undefined
  // (reading 'stageRef')"). Resolves once the store is empty.
  function clearLabelStudio(store) {
    // Emptied already (while the submit was on its way): nothing to wait for.
    if (store.isLoading && !store.annotationStore.annotations.length) return Promise.resolve();
    store.setFlags({ isLoading: true });
    return nextTask().then(function () {
      if (state.store === store) store.resetState();
    });
  }

  function destroyLabelStudio() {
    var ls = state.ls;
    state.ls = state.store = state.lsConfig = null;
    if (ls) {
      // Only ever called on an instance that finished loading (see
      // labelStudioFor): before that, Label Studio's destroy() does nothing.
      try { ls.destroy(); } catch (ignored) { /* a broken render may not tear down; a new holder follows */ }
      if (window.LabelStudio.instances) window.LabelStudio.instances.delete(ls);
    }
    ui.ls.textContent = "";
  }

  // Resolves once a Label Studio instance for this config is loaded and
  // rendered: true if it was made for this call, holding `task`.
  function labelStudioFor(setup, task) {
    if (state.store && state.lsConfig === setup.label_config) return Promise.resolve(false);
    destroyLabelStudio();
    if (typeof window.LabelStudio !== "function") {
      return Promise.reject(new Error("The labeling tool (Label Studio) did not load. Reload the page to try again."));
    }
    return new Promise(function (resolve, reject) {
      var holder = document.createElement("div");
      ui.ls.appendChild(holder);
      var ls;
      try {
        ls = new window.LabelStudio(holder, {
          config: setup.label_config,
          // The labeling area and its regions list; our page has the buttons.
          interfaces: ["panel", "side-column"],
          user: { pk: settings.user.id, firstName: settings.user.name, lastName: "" },
          task: task,
          onLabelStudioLoad: function (store) {
            // Called as the store is made, before Label Studio renders and
            // before its destroy() works: ready one task later.
            nextTask().then(function () {
              state.ls = ls;
              state.store = store;
              state.lsConfig = setup.label_config;
              resolve(true);
            });
          },
        });
      } catch (error) {
        reject(new Error("The labeling tool cannot show this project: " + String(error.message).split("\n")[0]));
      }
    });
  }

  // Item i as Label Studio loads it: its kept result, else its prediction,
  // else an empty annotation. The annotation is made and selected inside
  // initializeStore, in the same mobx batch that creates the config's tags: a
  // <Text> tag created while no annotation is selected throws in its reaction
  // ("Cannot read properties of null (reading 'regionStore')"). With a
  // prediction, the prediction is selected there and the annotation made from
  // it after. Copies: Label Studio may change what it is given.
  function taskOf(i) {
    var item = state.work.items[i];
    var kept = state.results[i];
    var predictions = JSON.parse(JSON.stringify(predictionsOf(item)));
    return {
      id: item.id, data: item.data, predictions: predictions,
      annotations: kept || !predictions.length
        ? [{ userGenerate: true, result: JSON.parse(JSON.stringify(kept || [])) }] : [],
    };
  }

  // Show item i in Label Studio: in a new instance when the config changed,
  // else in the current one, emptied first.
  function renderItem(i) {
    var task = taskOf(i);
    return labelStudioFor(state.setup, task).then(function (created) {
      if (created) return true;
      var store = state.store;
      return clearLabelStudio(store).then(function () {
        store.assignTask({ id: task.id, data: task.data });
        store.initializeStore({ annotations: task.annotations, predictions: task.predictions });
        return false;
      });
    }).then(function (created) {
      var store = state.store;
      var annotations = store.annotationStore;
      var annotation = annotations.annotations.length ? annotations.annotations[0]
        : annotations.addAnnotationFromPrediction(annotations.predictions[0]);
      annotations.selectAnnotation(annotation.id);
      store.setFlags({ isLoading: false });
      state.index = i;
      renderProgress();
      if (created) {
        state.liveKeys = liveHotkeys(store) || state.setup.hotkeys;
        renderKeys(state.liveKeys);
      }
    });
  }

  function currentResult() {
    var selected = state.store && state.store.annotationStore.selected;
    return selected ? selected.serializeAnnotation() : [];
  }

  function keepCurrent() {
    if (!state.work || !state.store) return;
    accrue();
    state.results[state.index] = currentResult();
    save();
  }

  // --- moving through the micro-task ------------------------------------------------

  function renderProgress() {
    var n = state.work.items.length;
    var i = state.index;
    ui.progress.textContent = "Item " + (i + 1) + " of " + n;
    ui.next.textContent = i === n - 1 ? "Submit micro-task" : "Next item";
    ui.next.classList.toggle("submit", i === n - 1);
    ui.prev.disabled = i === 0 || state.view !== "labeling";
    ui.items.textContent = "";
    var answered = state.work.items.map(function (item, k) {
      var result = k === i ? currentResult() : state.results[k];
      return Boolean(result && result.length);
    });
    var predicted = (state.work.items[i].predictions || [])[0];
    var assist = state.work.assist || {};
    ui.prediction.hidden = !predicted && !assist.unavailable;
    ui.prediction.classList.toggle("unavailable", !predicted && Boolean(assist.unavailable));
    if (predicted) {
      ui.prediction.textContent = "Pre-filled with a model's suggestion" +
        (predicted.model_version ? " (" + predicted.model_version + ")" : "") +
        ": check it, change what is wrong, or press Ctrl+Enter to accept it as it is.";
    } else if (assist.unavailable) {
      ui.prediction.textContent = assist.unavailable;
    }
    state.work.items.forEach(function (item, k) {
      var li = document.createElement("li");
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = String(k + 1);
      button.title = "Item " + (k + 1) + (answered[k] ? ", answered" : "");
      button.className = (k === i ? "current " : "") + (answered[k] ? "done" : "");
      if (k === i) button.setAttribute("aria-current", "step");
      button.addEventListener("click", afterSwitching(function () { go(k); }));
      li.appendChild(button);
      ui.items.appendChild(li);
    });
  }

  // The current item's mark follows its answer as it is given.
  var marking = 0;
  function markSoon() {
    if (marking || state.view !== "labeling" || !state.store) return;
    marking = setTimeout(function () {
      marking = 0;
      var button = ui.items.children[state.index] && ui.items.children[state.index].firstChild;
      if (button && state.view === "labeling") button.classList.toggle("done", currentResult().length > 0);
    }, 60);
  }

  function go(i) {
    if (state.view !== "labeling" || state.switching || i === state.index || i < 0 ||
        i >= state.work.items.length) return;
    keepCurrent();
    state.switching = true;
    renderItem(i).then(function () { show("labeling"); }, fail).then(function () {
      state.switching = false;
      // What the annotator did meanwhile, in order, until one starts another switch.
      while (deferred.length && !state.switching) deferred.shift()();
    });
  }

  // Keys and clicks that come while go() switches items (a task long: see
  // clearLabelStudio) wait for the new item: a fast annotator's hotkey must
  // not land on the item just left, whose answer is kept already, nor their
  // "Submit" click be lost.
  var deferred = [];
  function afterSwitching(action) {
    return function () {
      var args = arguments;
      if (state.switching) deferred.push(function () { action.apply(null, args); });
      else action.apply(null, args);
    };
  }

  function holdKey(event) {
    if (!state.switching || /^(Control|Shift|Alt|Meta)$/.test(event.key)) return false;
    event.preventDefault();
    event.stopImmediatePropagation();
    deferred.push(function () {
      (document.activeElement || document.body).dispatchEvent(new KeyboardEvent("keydown", {
        key: event.key, code: event.code, keyCode: event.keyCode, which: event.which, location: event.location,
        ctrlKey: event.ctrlKey, shiftKey: event.shiftKey, altKey: event.altKey, metaKey: event.metaKey,
        bubbles: true, cancelable: true }));
    });
    return true;
  }

  function primary() {
    if (state.view !== "labeling" || state.switching) return;
    if (state.index < state.work.items.length - 1) go(state.index + 1);
    else submit();
  }

  // --- submitting -----------------------------------------------------------------

  // Whether a pre-annotation was shown and kept unchanged is the server's to
  // decide, from what it served (assist.same_result): the page sends answers only.
  function annotations() {
    return state.work.items.map(function (item, i) {
      return {
        item_id: item.id,
        result: state.results[i] || [],
        seconds: Math.round(state.seconds[i] * 100) / 100,
      };
    });
  }

  function submit() {
    var timing = { pressedAt: performance.now() };
    keepCurrent();
    show("busy");
    say("Submitting…", "info");
    var work = state.work;
    var request = api("POST", url("submit", work.assignment_id), { annotations: annotations() });
    // While the request is on its way, tear the item down: one step less
    // between the answer and the next micro-task on screen.
    if (state.store) clearLabelStudio(state.store);
    request.then(function (response) {
      timing.submittedAt = performance.now();
      if (response.status === 200) {
        forget(work.assignment_id);
        say("");
        if (response.body.qualification) { showQualification(response.body.qualification, work); return; }
        return askForWork(timing);
      }
      if (response.status === 400) { invalid(response); return; }
      if (response.status === 409 || response.status === 404) { lost(words(response, "submitting")); return; }
      if (response.status === 401) { backToItem(state.index); sayHTML(signInLink(), "bad"); return; }
      backToItem(state.index);
      say(words(response, "submitting") + " Your answers are kept on this page.", "bad");
    });
  }

  function backToItem(i) {
    renderItem(i).then(function () { show("labeling"); }, fail);
  }

  // A 400 names the item by its id: say which of this micro-task's items it is, and go there.
  function invalid(response) {
    var text = words(response, "submitting");
    var match = /item (\d+)/.exec(text);
    var position = -1;
    if (match) {
      state.work.items.forEach(function (item, k) { if (String(item.id) === match[1]) position = k; });
    }
    if (position >= 0) {
      text = capital(text.replace(match[0], "Item " + (position + 1) + " of " + state.work.items.length));
    }
    backToItem(position >= 0 ? position : state.index);
    say(sentence(text) + " Fix it, then submit again.", "bad");
  }

  function lost(text) {
    forget(state.work && state.work.assignment_id);
    say("");
    text = sentence(capital(text));
    idle("Your lease on this micro-task was lost",
         text + (/not stored/.test(text) ? " Ask for new work to go on."
                                         : " Your answers to it could not be stored; ask for new work to go on."),
         "Get new work");
  }

  // --- qualification feedback -----------------------------------------------------------

  function describeResult(result) {
    var parts = (result || []).map(function (r) {
      var v = r.value || {};
      var labels = v.choices || v.labels || v.rectanglelabels || v.polygonlabels || v.keypointlabels ||
                   v.ellipselabels || v.brushlabels || v.taxonomy;
      labels = labels ? labels.map(function (l) { return Array.isArray(l) ? l.join(" / ") : l; }).join(", ") : "";
      if (r.type === "choices" || r.type === "taxonomy") return labels;
      if (v.text !== undefined && r.type === "textarea") return "“" + [].concat(v.text).join(" ") + "”";
      if (v.text !== undefined) return "“" + v.text + "” as " + labels;
      if (r.type === "rating") return v.rating + " star" + (v.rating === 1 ? "" : "s");
      if (r.type === "number") return String(v.number);
      if (v.points) return labels + " polygon of " + v.points.length + " points";
      if (v.width !== undefined) {
        return labels + " box at " + Math.round(v.x) + "%, " + Math.round(v.y) + "% (" +
               Math.round(v.width) + " × " + Math.round(v.height) + "%)";
      }
      if (v.x !== undefined) return labels + " point at " + Math.round(v.x) + "%, " + Math.round(v.y) + "%";
      return labels || JSON.stringify(v);
    }).filter(Boolean);
    return parts.length ? parts.join("; ") : "nothing";
  }

  function describeItem(item) {
    var box = document.createElement("div");
    box.className = "wb-item-data";
    Object.keys(item.data || {}).forEach(function (key) {
      var value = item.data[key];
      if (typeof value !== "string") return;
      if (MEDIA.test(value) && IMAGE.test(value)) {
        var img = document.createElement("img");
        img.src = value;
        img.alt = "the image of this item";
        box.appendChild(img);
      } else {
        var q = document.createElement("q");
        q.textContent = value.length > 240 ? value.slice(0, 240) + "…" : value;
        box.appendChild(q);
      }
    });
    return box;
  }

  function showQualification(q, work) {
    stopWork();
    ui.feedbackTitle.textContent = q.passed ? "You passed the qualification test" : "You did not pass the qualification test";
    ui.feedbackTitle.className = q.passed ? "ok" : "error";
    ui.feedbackRule.textContent = "You got " + q.right + " of " + q.total + " gold items right; the rule is " +
      q.rule + "." + (q.passed ? " The project's paid work is open to you now." :
                                 " This project's work stays closed to you; other projects may have work.");
    ui.feedbackItems.textContent = "";
    var mine = {};
    work.items.forEach(function (item, i) { mine[item.id] = { item: item, position: i, result: state.results[i] }; });
    q.items.forEach(function (check) {
      var entry = mine[check.item_id] || { item: { data: {} }, position: -1, result: [] };
      var li = document.createElement("li");
      li.className = check.right ? "right" : "wrong";
      li.dataset.item = check.item_id;
      var head = document.createElement("p");
      var verdict = document.createElement("strong");
      verdict.textContent = check.right ? "Right" : "Not right";
      head.appendChild(verdict);
      head.appendChild(document.createTextNode(" · item " + (entry.position + 1) + " of " + work.items.length));
      li.appendChild(head);
      li.appendChild(describeItem(entry.item));
      var dl = document.createElement("dl");
      function row(term, text) {
        var div = document.createElement("div");
        var dt = document.createElement("dt");
        dt.textContent = term;
        var dd = document.createElement("dd");
        dd.textContent = text;
        div.appendChild(dt);
        div.appendChild(dd);
        dl.appendChild(div);
      }
      row("Your answer", describeResult(entry.result));
      row("Expected", describeResult(check.expected));
      if (!check.right && check.why) row("Why it differs", check.why);
      if (check.explanation) row("Explanation", check.explanation);
      li.appendChild(dl);
      ui.feedbackItems.appendChild(li);
    });
    ui.cont.textContent = q.passed ? "Start the paid work" : (settings.project ? "Back to the dashboard" : "Look for other work");
    ui.cont.dataset.passed = q.passed ? "1" : "0";
    ui.progress.textContent = "";
    show("feedback");
    ui.cont.focus();
  }

  // --- lease, heartbeats and active time --------------------------------------------------

  function active(now) { return document.visibilityState === "visible" && now - state.lastInput < IDLE_MS; }

  // Count the time since the last tick towards the current item, up to the
  // moment the annotator went idle; nothing while the tab is hidden.
  function accrue() {
    var now = performance.now();
    var from = state.lastTick;
    state.lastTick = now;
    if (!state.work || (state.view !== "labeling" && state.view !== "busy")) return;
    if (document.visibilityState !== "visible") return;
    var until = Math.min(now, state.lastInput + IDLE_MS);
    if (until > from) state.seconds[state.index] += (until - from) / 1000;
  }

  function heartbeatEvery() {
    var lease = (state.work && state.work.lease_seconds) || 600;
    return Math.min(60000, lease * 1000 / 3);
  }

  // The lease ran out on this page's clock (a second's grace: the server's
  // Date header has whole seconds).
  function ranOut() { return state.leaseEnd - performance.now() < 1000; }

  function sayRanOut() {
    state.leaseNoticed = true;
    document.title = RAN_OUT_TITLE;
    say("Your lease ran out while you were away. Submit now: your work is accepted if nobody else has taken " +
        "this micro-task meanwhile; otherwise ask for new work.", "bad lease");
  }

  function beat() {
    if (state.beating || !state.work || state.leaseRefused) return;
    var work = state.work;
    state.beating = true;
    state.lastBeat = performance.now();
    api("POST", url("heartbeat", work.assignment_id)).then(function (response) {
      state.beating = false;
      if (state.work !== work) return;
      if (response.status === 200) {
        state.leaseEnd = leaseEndFrom(response.body.lease_expires_at, response.date, work.lease_seconds);
        state.leaseNoticed = false;
        if (ui.message.classList.contains("lease")) say("");
      } else if ((response.status === 409 || response.status === 404) && ranOut()) {
        // The server ended the lease that ran out. The answers are not lost
        // yet: a submit is still accepted while nobody else took the slot, and
        // the submit's answer says which it is. No more heartbeats for it.
        state.leaseRefused = true;
        sayRanOut();
      } else if (response.status === 409 || response.status === 404) {
        lost(words(response, "keeping your lease"));
      } else if (response.status === 401) {
        sayHTML(signInLink(), "bad");
      } else {
        // Try again in a few seconds rather than a whole interval.
        state.lastBeat = performance.now() - heartbeatEvery() + 5000;
        say(words(response, "keeping your lease alive") + " Retrying…", "bad lease");
      }
    });
  }

  function clock(ms) {
    var s = Math.ceil(ms / 1000);
    var m = Math.floor(s / 60);
    return m + ":" + String(s % 60).padStart(2, "0");
  }

  // The tab's title says it too: the annotator who is away is in another tab.
  var TITLE = document.title;
  var RAN_OUT_TITLE = "Lease ran out · " + TITLE;

  function tick() {
    accrue();
    var labeling = state.work && (state.view === "labeling" || state.view === "busy");
    var title = labeling && state.leaseNoticed ? RAN_OUT_TITLE : TITLE;
    if (document.title !== title) document.title = title;
    if (!labeling) return;
    var now = performance.now();
    var left = state.leaseEnd - now;
    ui.leaseLeft.textContent = left > 0 ? clock(left) : "0:00";
    ui.lease.classList.toggle("warn", left < 120000);
    if (active(now) && now - state.lastBeat >= heartbeatEvery()) beat();
    if (left <= 0 && !state.leaseNoticed) sayRanOut();
  }

  function noteInput() {
    var now = performance.now();
    var wasIdle = now - state.lastInput >= IDLE_MS;
    if (wasIdle) accrue();  // close the idle stretch before it starts counting again
    state.lastInput = now;
    if (wasIdle && state.work && state.view === "labeling" && now - state.lastBeat > heartbeatEvery() / 2) beat();
  }

  function stopWork() {
    state.work = null;
  }

  // --- keeping answers across a reload ------------------------------------------------

  function save() {
    if (!state.work) return;
    try {
      sessionStorage.setItem("workbench:" + state.work.assignment_id,
                             JSON.stringify({ results: state.results, seconds: state.seconds }));
    } catch (ignored) { /* storage full or disabled: answers live in the page only */ }
  }

  function restore(assignmentId) {
    try {
      var kept = JSON.parse(sessionStorage.getItem("workbench:" + assignmentId) || "null");
      return kept && Array.isArray(kept.results) ? kept : null;
    } catch (ignored) { return null; }
  }

  function forget(assignmentId) {
    try { sessionStorage.removeItem("workbench:" + assignmentId); } catch (ignored) { /* see save */ }
  }

  // --- skipping ----------------------------------------------------------------------

  function openSkip() {
    if (state.view !== "labeling") return;
    ui.skipForm.reset();
    ui.skipDialog.showModal();
  }

  function skip(reason) {
    var work = state.work;
    keepCurrent();
    show("busy");
    say("Skipping…", "info");
    api("POST", url("skip", work.assignment_id), { reason: reason }).then(function (response) {
      if (response.status === 200) {
        forget(work.assignment_id);
        stopWork();
        return askForWork(null, "Skipped: the micro-task went back to the queue. Here is the next one.");
      }
      if (response.status === 409 || response.status === 404) { lost(words(response, "skipping")); return; }
      show("labeling");
      say(words(response, "skipping"), "bad");
    });
  }

  // --- timing of the switch to the next micro-task --------------------------------------

  function ready(timing) {
    // The first item on screen after the page load (performance.now() counts from navigation start).
    if (!page.ready) page.firstReadyAt = performance.now();
    page.ready = true;
    ui.root.dataset.assignment = String(state.work.assignment_id);
    if (!timing || !timing.pressedAt) return;
    // Ready for input once the new item has been painted: after the next frame.
    requestAnimationFrame(function () {
      setTimeout(function () {
        var at = performance.now();
        page.switches.push({ total: at - timing.pressedAt, submit: timing.submittedAt - timing.pressedAt,
                             next: timing.nextAt - timing.submittedAt, render: at - timing.nextAt });
      }, 0);
    });
  }

  function fail(error) {
    say(String(error && error.message || error), "bad");
    if (state.view === "busy") show("labeling");
  }

  // --- wiring -----------------------------------------------------------------------

  ui.next.addEventListener("click", afterSwitching(primary));
  ui.prev.addEventListener("click", afterSwitching(function () { go(state.index - 1); }));
  ui.skip.addEventListener("click", afterSwitching(openSkip));
  ui.again.addEventListener("click", function () { askForWork(); });
  ui.cont.addEventListener("click", function () {
    if (ui.cont.dataset.passed === "0" && settings.project) { window.location.href = settings.urls.dashboard; return; }
    askForWork();
  });
  ui.skipDialog.addEventListener("close", function () {
    if (ui.skipDialog.returnValue !== "skip") return;
    var why = ui.skipForm.elements.why.value;
    var more = ui.skipReason.value.trim();
    skip(more ? why + ": " + more : why);
  });

  window.addEventListener("keydown", function (event) {
    if (holdKey(event)) return;
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && !ui.skipDialog.open) {
      event.preventDefault();
      event.stopPropagation();
      if (event.shiftKey) go(state.index - 1); else primary();
    }
  }, true);
  ["keyup", "mouseup", "touchend"].forEach(function (type) {
    window.addEventListener(type, markSoon, { capture: true, passive: true });
  });
  ["keydown", "mousedown", "mousemove", "wheel", "touchstart", "scroll"].forEach(function (type) {
    window.addEventListener(type, noteInput, { capture: true, passive: true });
  });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") accrue();
    else state.lastTick = performance.now();  // the hidden stretch never counts
  });
  // Whatever slips through is said in words, not left in the console.
  window.addEventListener("unhandledrejection", function (event) {
    event.preventDefault();
    fail(event.reason && event.reason.message ? event.reason.message : "Something went wrong on this page; reload it.");
  });
  window.addEventListener("error", function (event) {
    event.preventDefault();
    fail("The labeling tool hit a problem: " + (event.message || "unknown error") + ". Reload the page if it persists.");
  });
  setInterval(tick, TICK_MS);

  if (settings.setup) showProject(settings.setup, null);
  askForWork();
})();
