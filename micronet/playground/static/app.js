// micronet playground: the page. Every change goes to the server as a setup (validated there, by the
// same rules as micronet-train); frames come back over a websocket, one at a time: the page answers
// each with "drawn", so a slow page gets fewer frames instead of a backlog.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  // The palette is the server's (micronet.palette, the same as the PNGs' and the GIF's), set from /api/options.
  let CLASS_COLOURS = [];
  let NEGATIVE = null;   // weights and neuron outputs below zero: [r, g, b]
  let POSITIVE = null;   // and above
  const classColour = (k) => CLASS_COLOURS[k % CLASS_COLOURS.length];
  const LEARNING_RATES = [0.00001, 0.0001, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10];
  const BATCH_SIZES = [1, 5, 10, 16, 32, 64, 128, "full"];
  const SESSION_KEY = "micronet-playground-session";

  // What the tests (and the curious) can read: window.playground.
  const ui = window.playground = {
    session: null, options: null, setup: null, version: -1, epoch: 0, status: "connecting", pending: 0,
    history: [], scene: null, frame: null, framesDrawn: 0, drawMilliseconds: 0,
  };
  let socket = null;
  let drawPending = false;
  let unanswered = false;  // a frame has arrived that the server waits to hear "drawn" about
  let messageTimer = null;

  // ----- talking to the server ------------------------------------------------

  async function api(method, path, body) {
    const init = { method, headers: {} };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.error || `${response.status} ${response.statusText}`);
    return data;
  }

  const sessionPath = (tail) => `/api/sessions/${ui.session}${tail}`;

  function showMessage(text) {
    const box = $("message");
    box.textContent = text;
    box.hidden = !text;
    clearTimeout(messageTimer);
    if (text) messageTimer = setTimeout(() => { box.hidden = true; }, 10000);
  }

  // Every change and every action goes through one queue, one request at a time, in the order the user
  // made them: a slow answer never lets a later change overtake an earlier one. A setup change is a
  // function of the setup (not a finished setup), applied at once to what the page shows (`ui.setup`, the
  // setup the user wants) and, when its turn comes, to the setup the server last confirmed; changes
  // waiting together go as one request. A refused change is dropped alone, with the server's message.
  const queue = [];
  let confirmed = null;  // the setup the server last confirmed
  let sending = false;

  function enqueue(item) {
    queue.push(item);
    ui.pending = queue.length;
    if (!sending) drain();
  }

  function act(method, tail, body) {
    enqueue({ method, tail, body });
  }

  function changeSetup(mutate) {
    $("share-box").hidden = true;  // its link is of the setup before this change
    if (ui.setup) {
      const shown = structuredClone(ui.setup);
      mutate(shown);
      ui.setup = shown;
      showSetup(ui.setup);
    }
    enqueue({ mutate });
  }

  // What the page shows: the confirmed setup with every change still waiting applied on top, in order.
  function showDesired() {
    if (!confirmed) return;
    const setup = structuredClone(confirmed);
    for (const item of queue) if (item.mutate) item.mutate(setup);
    ui.setup = setup;
    showSetup(ui.setup);
  }

  async function drain() {
    sending = true;
    let refused = false;  // a refusal's message stays up while the changes queued with it go on
    while (queue.length) {
      let batch = 1;
      if (queue[0].mutate) while (batch < queue.length && queue[batch].mutate && !queue[0].single) batch += 1;
      const items = queue.slice(0, batch);
      let request = items[0];
      if (items[0].mutate) {
        const setup = structuredClone(confirmed);
        for (const item of items) item.mutate(setup);
        request = { method: "PUT", tail: "/setup", body: setup };
      }
      try {
        const summary = await api(request.method, sessionPath(request.tail), request.body);
        queue.splice(0, batch);
        if (!refused) showMessage("");
        applySummary(summary);
      } catch (error) {
        if (batch > 1) {  // one of several changes is refused: try them one by one, to drop only that one
          for (const item of items) item.single = true;
          continue;
        }
        queue.splice(0, 1);
        refused = true;
        showMessage(error.message);
      }
      ui.pending = queue.length;
      showDesired();
    }
    sending = false;
  }

  // Answers and frames may arrive in any order: nothing older than what the page shows is shown.
  function isStale(summary) {
    return summary.version < ui.version || (summary.version === ui.version && summary.epoch < ui.epoch);
  }

  function applySummary(summary) {
    if (summary.version > ui.version) {
      ui.version = summary.version;
      ui.epoch = summary.epoch;
    } else if (summary.version === ui.version) {
      ui.epoch = Math.max(ui.epoch, summary.epoch);
    } else {
      return;  // an answer about a trainer that has since been replaced
    }
    ui.status = summary.status;
    ui.speed = summary.speed;
    ui.note = summary.note;
    ui.error = summary.error;
    if (summary.setup && summary.version === ui.version) {
      confirmed = summary.setup;
      if (!sending) showDesired();
    }
    showStatus();
  }

  function connect() {
    const ws = new WebSocket(`ws://${location.host}${sessionPath("/live")}`);
    socket = ws;
    ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "closed") {
        ui.status = "closed";
        showMessage(message.note || "this session has ended; reload the page");
        sessionStorage.removeItem(SESSION_KEY);
        showStatus();
        return;
      }
      if (isStale(message)) {  // about a trainer since replaced, or an epoch older than the one shown
        ws.send("drawn");
        return;
      }
      if (message.scene) {
        ui.scene = message.scene;
        ui.history = [];
      }
      ui.history.splice(message.rows_from, ui.history.length, ...message.rows);
      ui.frame = message;
      unanswered = true;
      applySummary(message);
      if (message.scene) {
        buildWidthControls();
        showScoreNames();
      }
      if (!drawPending) {
        drawPending = true;
        requestAnimationFrame(draw);
      }
    };
    ws.onclose = () => {
      if (socket === ws && ui.status !== "closed") setTimeout(connect, 1000);
    };
  }

  // ----- controls ---------------------------------------------------------------

  function fillSelect(select, values, label = String) {
    select.replaceChildren(...values.map((v) => new Option(label(v), String(v))));
  }

  function buildControls(options) {
    CLASS_COLOURS = options.palette.classes;
    NEGATIVE = hexRgb(options.palette.negative);
    POSITIVE = hexRgb(options.palette.positive);
    // Every control's label is the server's name for it, the one its refusals use.
    for (const label of document.querySelectorAll("[data-control]")) {
      label.textContent = options.controls[label.dataset.control];
    }
    $("datasets").setAttribute("aria-label", options.controls["dataset.name"]);
    fillSelect($("lr"), LEARNING_RATES);
    fillSelect($("activation"), options.activations);
    for (const option of $("activation").options) option.title = `${option.value}(x) = ${options.activation_formulas[option.value]}`;
    fillSelect($("optimizer"), options.optimizers);
    fillSelect($("batch_size"), BATCH_SIZES);
    $("n_samples").max = options.limits.n_samples;
    const box = $("datasets");
    for (const [name, spec] of Object.entries(options.datasets)) {
      const button = document.createElement("button");
      button.setAttribute("role", "radio");
      button.dataset.name = name;
      button.title = `${name} (${spec.task})`;
      const icon = document.createElement("canvas");
      icon.width = icon.height = 56;
      drawDatasetIcon(icon, name);
      button.append(icon, name);
      button.addEventListener("click", () => pickDataset(name));
      box.append(button);
    }
  }

  // A new dataset with its own defaults. Its losses are the ones the trainer takes for it; when the task
  // changes the loss is left to the trainer's default for the new task (mse means one thing for classes,
  // another for numbers), and within a task the chosen loss stays.
  function pickDataset(name) {
    const spec = ui.options.datasets[name];
    return changeSetup((setup) => {
      const old = setup.dataset;
      const sameTask = ui.options.datasets[old.name].task === spec.task;
      setup.dataset = { ...spec.defaults, name, n_samples: old.n_samples, test_size: old.test_size };
      if (!sameTask || !spec.losses.includes(setup.loss)) delete setup.loss;
    });
  }

  function showSetup(setup) {
    if (!setup) return;
    const ds = setup.dataset;
    for (const button of $("datasets").children) {
      button.setAttribute("aria-checked", String(button.dataset.name === ds.name));
    }
    setSlider("n_samples", ds.n_samples, (v) => String(v));
    const spread = ds.name === "blobs";
    $("noise-name").textContent = ui.options.controls[spread ? "dataset.cluster_std" : "dataset.noise"];
    const noise = $("noise");
    noise.min = spread ? 0.1 : 0;
    noise.max = spread ? 3 : ds.name === "sine" ? 1 : 0.5;
    noise.step = spread ? 0.1 : 0.01;
    setSlider("noise", spread ? ds.cluster_std : ds.noise, (v) => Number(v).toFixed(2));
    setSlider("test_size", ds.test_size, (v) => Number(v).toFixed(2));
    $("seed").value = setup.seed;
    fillSelect($("loss"), ui.options.datasets[ds.name].losses);
    $("loss").value = setup.loss;
    $("activation").value = setup.model.activation;
    $("optimizer").value = setup.optimizer.name;
    selectValue($("lr"), setup.optimizer.lr);
    showOptimizerOptions(setup.optimizer);
    selectValue($("batch_size"), setup.training.batch_size);
    const n = setup.model.hidden.length;
    $("layer-count").textContent = `${ui.options.controls["model.hidden"]}: ${n}`;
    $("add-layer").disabled = n >= ui.options.limits.layers;
    $("remove-layer").disabled = n === 0;
    if (ui.scene) buildWidthControls();
  }

  // The chosen optimizer's own options (SGD's momentum, Adam's betas), from the trainer's table with its defaults.
  function showOptimizerOptions(optimizer) {
    const box = $("optimizer-options");
    const table = ui.options.optimizer_options[optimizer.name] || {};
    if (box.dataset.optimizer !== optimizer.name) {
      box.dataset.optimizer = optimizer.name;
      box.replaceChildren(...Object.entries(table).map(([key, fallback]) => {
        const label = document.createElement("label");
        label.className = "field";
        const name = document.createElement("span");
        name.className = "label";
        name.textContent = ui.options.controls[`optimizer.${key}`];
        const input = document.createElement("input");
        input.id = `optimizer-${key}`;
        input.type = typeof fallback === "boolean" ? "checkbox" : Array.isArray(fallback) ? "text" : "number";
        if (input.type === "number") input.step = "any";
        input.addEventListener("change", () => {
          const v = input.type === "checkbox" ? input.checked
            : input.type === "text" ? input.value.split(",").map((part) => Number(part.trim()))
              : Number(input.value);
          changeSetup((s) => { if (s.optimizer.name === optimizer.name) s.optimizer[key] = v; });
        });
        label.append(name, input);
        return label;
      }));
    }
    for (const [key, fallback] of Object.entries(table)) {
      const input = $(`optimizer-${key}`);
      const value = key in optimizer ? optimizer[key] : fallback;
      if (input.type === "checkbox") input.checked = Boolean(value);
      else input.value = Array.isArray(value) ? value.join(", ") : String(value);
    }
  }

  // "Share": the whole setup in the address, as #setup=JSON. Opening the link on any micronet playground
  // starts a session of that setup: the same data, network and first weights (the seed is in it).
  function shareLink(setup) {
    return `${location.origin}${location.pathname}#setup=${encodeURIComponent(JSON.stringify(setup))}`;
  }

  function share() {
    const link = shareLink(ui.setup);
    history.replaceState(null, "", link);
    $("share-link").value = link;
    $("share-box").hidden = false;
    $("share-link").select();
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(link).catch(() => {});
  }

  // The setup a shared link carries, or null; a link that is not one is said so, and the page goes on.
  function linkedSetup() {
    const match = location.hash.match(/^#setup=(.*)$/s);
    if (!match) return null;
    history.replaceState(null, "", location.pathname);  // a reload then keeps the session it opened
    try {
      return JSON.parse(decodeURIComponent(match[1]));
    } catch (error) {
      showMessage("this link's setup cannot be read (it is not JSON); opened the default setup instead");
      return null;
    }
  }

  function setSlider(id, value, format) {
    $(id).value = value;
    $(`${id}-value`).textContent = format(value);
  }

  // Show a value in a select, adding it as an option when it is not one of the presets.
  function selectValue(select, value) {
    const text = String(value);
    if (![...select.options].some((o) => o.value === text)) select.append(new Option(text, text));
    select.value = text;
  }

  function showScoreNames() {
    const regression = ui.scene && ui.scene.task === "regression";
    const score = ui.scene ? ui.options.scores[ui.scene.task] : null;
    $("test-score-name").textContent = score ? `Test ${score.label}` : "Test score";
    $("train-score-name").textContent = score ? `Train ${score.label}` : "Train score";
    const legend = $("legend");
    legend.replaceChildren();
    if (!ui.scene) return;
    const entries = regression ? [["train points", "#52606d", false], ["test points", "#ffffff", true]]
      : ui.scene.classes.map((c, i) => [`class ${c}`, classColour(i), false]);
    for (const [text, colour, hollow] of entries) {
      const item = document.createElement("span");
      const dot = document.createElement("i");
      dot.style.background = colour;
      if (hollow) dot.className = "hollow";
      item.append(dot, text);
      legend.append(item);
    }
    if (!regression) {
      const rims = document.createElement("span");
      rims.textContent = "white rim: train, dark rim: test";
      legend.append(rims);
    }
  }

  function buildWidthControls() {
    const box = $("widths");
    box.replaceChildren();
    const hidden = ui.setup.model.hidden;
    hidden.forEach((width, i) => {
      const item = document.createElement("div");
      item.className = "width";
      const minus = document.createElement("button");
      minus.textContent = "−";
      minus.title = `fewer neurons in hidden layer ${i + 1}`;
      minus.disabled = width <= 1;  // each click changes the width it finds when its turn comes
      minus.addEventListener("click", () => changeSetup((s) => { if (i < s.model.hidden.length) s.model.hidden[i] = Math.max(1, s.model.hidden[i] - 1); }));
      const plus = document.createElement("button");
      plus.textContent = "+";
      plus.title = `more neurons in hidden layer ${i + 1}`;
      plus.disabled = width >= ui.options.limits.width;
      plus.addEventListener("click", () => changeSetup((s) => {
        if (i < s.model.hidden.length) s.model.hidden[i] = Math.min(ui.options.limits.width, s.model.hidden[i] + 1);
      }));
      const count = document.createElement("span");
      count.textContent = String(width);
      item.append(minus, count, plus);
      box.append(item);
    });
    placeWidthControls();
  }

  function wireControls() {
    $("play").addEventListener("click", () => {
      if (ui.status === "playing") act("POST", "/pause", {});
      else act("POST", "/play", { speed: speedValue() });
    });
    $("step").addEventListener("click", () => act("POST", "/step", {}));
    $("reset").addEventListener("click", () => act("POST", "/reset", {}));
    $("speed").addEventListener("change", () => {
      if (ui.status === "playing") act("POST", "/play", { speed: speedValue() });
    });
    $("export").addEventListener("click", () => {
      const link = document.createElement("a");
      link.href = sessionPath("/export");
      link.download = "";
      document.body.append(link);
      link.click();
      link.remove();
    });
    for (const id of ["n_samples", "noise", "test_size"]) {
      $(id).addEventListener("input", () => {
        const v = Number($(id).value);
        $(`${id}-value`).textContent = id === "n_samples" ? String(v) : v.toFixed(2);
      });
      $(id).addEventListener("change", () => {
        const v = Number($(id).value);
        changeSetup((s) => {
          if (id === "noise") s.dataset[s.dataset.name === "blobs" ? "cluster_std" : "noise"] = v;
          else s.dataset[id] = v;
        });
      });
    }
    $("seed").addEventListener("change", () => { const v = Number($("seed").value); changeSetup((s) => { s.seed = v; }); });
    $("regenerate").addEventListener("click", () => changeSetup((s) => { s.seed = (s.seed + 1) % 4294967296; }));
    $("lr").addEventListener("change", () => { const v = Number($("lr").value); changeSetup((s) => { s.optimizer.lr = v; }); });
    $("activation").addEventListener("change", () => { const v = $("activation").value; changeSetup((s) => { s.model.activation = v; }); });
    $("loss").addEventListener("change", () => { const v = $("loss").value; changeSetup((s) => { s.loss = v; }); });
    $("optimizer").addEventListener("change", () => {
      const v = $("optimizer").value;  // another optimizer's options start from the trainer's defaults
      changeSetup((s) => { if (s.optimizer.name !== v) s.optimizer = { name: v, lr: s.optimizer.lr }; });
    });
    $("share").addEventListener("click", share);
    $("batch_size").addEventListener("change", () => {
      const v = $("batch_size").value === "full" ? "full" : Number($("batch_size").value);
      changeSetup((s) => { s.training.batch_size = v; });
    });
    $("add-layer").addEventListener("click", () => changeSetup((s) => {
      const hidden = s.model.hidden;
      if (hidden.length < ui.options.limits.layers) hidden.push(hidden.length ? hidden[hidden.length - 1] : 4);
    }));
    $("remove-layer").addEventListener("click", () => changeSetup((s) => { s.model.hidden.pop(); }));
    $("show-test").addEventListener("change", () => requestAnimationFrame(draw));
    window.addEventListener("resize", () => { placeWidthControls(); requestAnimationFrame(draw); });
  }

  const speedValue = () => ($("speed").value === "max" ? null : Number($("speed").value));

  function showStatus() {
    $("epoch").textContent = String(ui.epoch).padStart(6, "0");
    const playing = ui.status === "playing";
    const play = $("play");
    play.classList.toggle("playing", playing);
    play.title = playing ? "Pause" : "Play";
    play.setAttribute("aria-label", playing ? "pause" : "play");
    const stopped = ui.status === "diverged" || ui.status === "closed";
    play.disabled = $("step").disabled = stopped;
    $("export").disabled = ui.epoch < 1 || ui.status === "closed";
    const status = $("status");
    status.className = ui.status === "diverged" ? "diverged" : "";
    status.textContent = ui.status === "diverged" ? `stopped: ${ui.error}` : [ui.status, ui.note].filter(Boolean).join(" — ");
    const rows = ui.history;
    const last = rows.length ? rows[rows.length - 1] : null;
    const score = ui.scene ? ui.options.scores[ui.scene.task] : null;
    const key = score ? score.key : "";
    $("train-loss").textContent = last ? last.train_loss.toFixed(3) : "–";
    $("test-loss").textContent = last && "test_loss" in last ? last.test_loss.toFixed(3) : "–";
    $("train-score").textContent = last && `train_${key}` in last ? last[`train_${key}`].toFixed(score.digits) : "–";
    $("test-score").textContent = last && `test_${key}` in last ? last[`test_${key}`].toFixed(score.digits) : "–";
  }

  // ----- drawing ----------------------------------------------------------------

  function decode(b64) {
    const text = atob(b64);
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    return bytes;
  }

  function hexRgb(hex) {
    const n = parseInt(hex.slice(1), 16);
    return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  }

  // A value in [-1, 1] as a colour: orange below zero, white at zero, blue above.
  function diverging(v, out, at) {
    const c = v < 0 ? NEGATIVE : POSITIVE;
    const t = Math.min(Math.abs(v), 1);
    out[at] = 255 + (c[0] - 255) * t;
    out[at + 1] = 255 + (c[1] - 255) * t;
    out[at + 2] = 255 + (c[2] - 255) * t;
    out[at + 3] = 255;
  }

  // A canvas sized for the screen's pixel density; returns its 2d context in CSS pixels.
  function context(canvas, width, height) {
    const ratio = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
      canvas.style.height = `${height}px`;
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    return ctx;
  }

  function draw() {
    drawPending = false;
    const frame = ui.frame;
    if (!frame || !ui.scene) return;
    const started = performance.now();
    // Ask for the next frame before drawing this one: the server renders it while we draw.
    // (In a hidden tab requestAnimationFrame stops, and so do the frames.)
    if (unanswered && socket && socket.readyState === WebSocket.OPEN) {
      unanswered = false;
      socket.send("drawn");
    }
    drawOutput(frame);
    drawNetwork(frame);
    drawCurves();
    showStatus();
    ui.framesDrawn += 1;
    ui.drawMilliseconds += performance.now() - started;
  }

  const scratch = document.createElement("canvas");

  function drawOutput(frame) {
    const scene = ui.scene;
    const size = 400;
    const ctx = context($("boundary"), size, size);
    const [x0, x1, y0, y1] = scene.extent;
    const px = (x) => ((x - x0) / (x1 - x0)) * size;
    const py = (y) => size - ((y - y0) / (y1 - y0)) * size;
    const showTest = $("show-test").checked;
    if (scene.features === 2 && scene.task === "classification") {
      const n = scene.grid;
      const labels = decode(frame.output.label);
      const strength = decode(frame.output.strength);
      scratch.width = scratch.height = n;
      const sctx = scratch.getContext("2d");
      const image = sctx.createImageData(n, n);
      const colours = scene.classes.map((_, i) => hexRgb(classColour(i)));
      for (let i = 0; i < n * n; i++) {
        const c = colours[labels[i]];
        const t = 0.75 * (strength[i] / 255);
        image.data[4 * i] = 255 + (c[0] - 255) * t;
        image.data[4 * i + 1] = 255 + (c[1] - 255) * t;
        image.data[4 * i + 2] = 255 + (c[2] - 255) * t;
        image.data[4 * i + 3] = 255;
      }
      sctx.putImageData(image, 0, 0);
      ctx.imageSmoothingEnabled = true;
      ctx.drawImage(scratch, 0, 0, size, size);
      const dot = (x, y, label, test) => {
        ctx.beginPath();
        ctx.arc(px(x[0]), py(x[1]), 3.6, 0, 2 * Math.PI);
        ctx.fillStyle = classColour(label);
        ctx.fill();
        ctx.lineWidth = test ? 1.6 : 1;
        ctx.strokeStyle = test ? "#1f2933" : "#ffffff";
        ctx.stroke();
      };
      scene.train.x.forEach((x, i) => dot(x, 0, scene.train.y[i], false));
      if (showTest) scene.test.x.forEach((x, i) => dot(x, 0, scene.test.y[i], true));
    } else {
      ctx.fillStyle = "#fbfcfd";
      ctx.fillRect(0, 0, size, size);
      ctx.strokeStyle = "#e4e8ee";
      ctx.beginPath();
      ctx.moveTo(0, py(0)); ctx.lineTo(size, py(0));
      ctx.moveTo(px(0), 0); ctx.lineTo(px(0), size);
      ctx.stroke();
      const dot = (x, y, test) => {
        ctx.beginPath();
        ctx.arc(px(x[0]), py(y), 3.4, 0, 2 * Math.PI);
        ctx.fillStyle = test ? "#ffffff" : "#52606d";
        ctx.fill();
        ctx.lineWidth = test ? 1.4 : 0.8;
        ctx.strokeStyle = test ? "#1f2933" : "#ffffff";
        ctx.stroke();
      };
      scene.train.x.forEach((x, i) => dot(x, scene.train.y[i], false));
      if (showTest) scene.test.x.forEach((x, i) => dot(x, scene.test.y[i], true));
      const curve = frame.output.curve;
      ctx.beginPath();
      curve.forEach((y, i) => {
        const x = x0 + ((x1 - x0) * i) / (curve.length - 1);
        if (i === 0) ctx.moveTo(px(x), py(y)); else ctx.lineTo(px(x), py(y));
      });
      ctx.lineWidth = 2.5;
      ctx.strokeStyle = ui.options.palette.positive;
      ctx.stroke();
    }
  }

  // Column centres and node size of the network view, shared by the canvas and the width buttons.
  function networkLayout(sizes = ui.scene.layers) {
    const width = $("network-box").clientWidth;
    const tallest = Math.max(...sizes);
    const node = Math.max(10, Math.min(40, Math.floor(540 / tallest) - 6));
    const gap = Math.max(3, Math.min(12, node / 3));
    const height = Math.max(260, tallest * (node + gap) + 30);
    const margin = node / 2 + 24;
    const columns = sizes.map((_, i) => margin + (i * (width - 2 * margin)) / Math.max(sizes.length - 1, 1));
    return { sizes, width, height, node, gap, columns };
  }

  function placeWidthControls() {
    if (!ui.scene) return;
    // The buttons follow the setup the user wants, which may be ahead of the network drawn.
    const layers = ui.scene.layers;
    const layout = networkLayout([layers[0], ...ui.setup.model.hidden, layers[layers.length - 1]]);
    [...$("widths").children].forEach((item, i) => { item.style.left = `${layout.columns[i + 1]}px`; });
  }

  function drawNetwork(frame) {
    const scene = ui.scene;
    const layout = networkLayout();
    const { sizes, node, gap, columns, height } = layout;
    const ctx = context($("network"), layout.width, height);
    const top = (n) => (height - n * (node + gap) + gap) / 2;
    const centre = (layer, j) => [columns[layer], top(sizes[layer]) + j * (node + gap) + node / 2];
    let largest = 1e-12;
    for (const layer of frame.weights) for (const row of layer.w) for (const w of row) largest = Math.max(largest, Math.abs(w));
    frame.weights.forEach((layer, l) => {
      layer.w.forEach((row, j) => {
        const [bx, by] = centre(l + 1, j);
        row.forEach((w, i) => {
          const [ax, ay] = centre(l, i);
          const t = Math.abs(w) / largest;
          ctx.beginPath();
          ctx.moveTo(ax + node / 2, ay);
          ctx.bezierCurveTo((ax + bx) / 2, ay, (ax + bx) / 2, by, bx - node / 2, by);
          const c = w < 0 ? NEGATIVE : POSITIVE;
          ctx.strokeStyle = `rgba(${c[0]},${c[1]},${c[2]},${0.15 + 0.75 * t})`;
          ctx.lineWidth = 0.4 + 4 * t;
          ctx.stroke();
        });
      });
    });
    const n = scene.thumb;
    frame.nodes.forEach((layer, l) => {
      const bytes = decode(layer.thumbs);
      const per = scene.features === 2 ? n * n : n * 2;
      for (let j = 0; j < sizes[l]; j++) {
        const [cx, cy] = centre(l, j);
        const x = cx - node / 2;
        const y = cy - node / 2;
        const values = bytes.subarray(j * per, (j + 1) * per);
        if (scene.features === 2) {
          scratch.width = scratch.height = n;
          const sctx = scratch.getContext("2d");
          const image = sctx.createImageData(n, n);
          for (let k = 0; k < n * n; k++) diverging((values[k] - 128) / 127, image.data, 4 * k);
          sctx.putImageData(image, 0, 0);
          ctx.imageSmoothingEnabled = true;
          ctx.drawImage(scratch, x, y, node, node);
        } else {
          ctx.fillStyle = "#fbfcfd";
          ctx.fillRect(x, y, node, node);
          ctx.beginPath();
          for (let k = 0; k < per; k++) {
            const vx = x + (k / (per - 1)) * node;
            const vy = y + node / 2 - ((values[k] - 128) / 127) * (node / 2 - 1);
            if (k === 0) ctx.moveTo(vx, vy); else ctx.lineTo(vx, vy);
          }
          ctx.strokeStyle = "#1f2933";
          ctx.lineWidth = 1;
          ctx.stroke();
        }
        ctx.strokeStyle = "#9aa5b1";
        ctx.lineWidth = 1;
        ctx.strokeRect(x + 0.5, y + 0.5, node - 1, node - 1);
      }
    });
    ctx.fillStyle = "#6b7785";
    ctx.font = "11px system-ui, sans-serif";
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (let i = 0; i < sizes[0]; i++) {
      const [cx, cy] = centre(0, i);
      ctx.fillText(`x${i + 1}`, cx - node / 2 - 5, cy);
    }
    ctx.textAlign = "left";
    const outputs = sizes.length - 1;
    for (let j = 0; j < sizes[outputs]; j++) {
      const [cx, cy] = centre(outputs, j);
      const label = scene.classes ? scene.classes[j] : "y";
      if (scene.classes) {
        ctx.fillStyle = classColour(j);
        ctx.fillRect(cx + node / 2 + 5, cy - 4, 8, 8);
        ctx.fillStyle = "#6b7785";
      }
      ctx.fillText(String(label), cx + node / 2 + (scene.classes ? 17 : 5), cy);
    }
  }

  function drawCurves() {
    const width = 400;
    const height = 110;
    const ctx = context($("curves"), width, height);
    const rows = ui.history;
    ctx.fillStyle = "#fbfcfd";
    ctx.fillRect(0, 0, width, height);
    if (!rows.length) return;
    let top = 0;
    for (const row of rows) top = Math.max(top, row.train_loss, row.test_loss ?? 0);
    top = top > 0 ? top * 1.05 : 1;
    const pad = 6;
    const strip = 18;  // below the plot: the labels and the key
    const px = (i) => pad + (rows.length === 1 ? 0 : (i / (rows.length - 1)) * (width - 2 * pad));
    const py = (v) => height - strip - (v / top) * (height - strip - pad);
    const line = (key, colour, dash) => {
      if (!(key in rows[0])) return;
      ctx.beginPath();
      rows.forEach((row, i) => { if (i === 0) ctx.moveTo(px(i), py(row[key])); else ctx.lineTo(px(i), py(row[key])); });
      ctx.setLineDash(dash);
      ctx.strokeStyle = colour;
      ctx.lineWidth = 1.8;
      ctx.stroke();
      ctx.setLineDash([]);
    };
    const splits = ui.options.palette.splits;
    line("test_loss", splits.test, [4, 3]);
    line("train_loss", splits.train, []);
    // The labels sit in a strip below the plot, where no curve goes.
    ctx.font = "11px system-ui, sans-serif";
    ctx.textBaseline = "middle";
    const y = height - strip / 2;
    ctx.textAlign = "left";
    ctx.fillStyle = "#6b7785";
    ctx.fillText(`loss 0 to ${top.toPrecision(2)}`, pad, y);
    ctx.textAlign = "right";
    ctx.fillText(`epoch ${rows[rows.length - 1].epoch}`, width - pad, y);
    ctx.textAlign = "left";
    let x = 150;
    for (const [name, dash] of [["train", []], ["test", [4, 3]]]) {
      ctx.beginPath();
      ctx.setLineDash(dash);
      ctx.moveTo(x, y);
      ctx.lineTo(x + 18, y);
      ctx.strokeStyle = splits[name];
      ctx.lineWidth = 1.8;
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillStyle = "#6b7785";
      ctx.fillText(name, x + 22, y);
      x += 62;
    }
  }

  // Little previews of the datasets for the picker (drawn here, for looks only).
  function drawDatasetIcon(canvas, name) {
    const ctx = canvas.getContext("2d");
    const s = canvas.width;
    ctx.fillStyle = "#f6f8fa";
    ctx.fillRect(0, 0, s, s);
    let seed = 7;
    const random = () => { seed = (seed * 16807) % 2147483647; return seed / 2147483647; };
    const jitter = (a) => (random() - 0.5) * a;
    const points = [];
    for (let i = 0; i < 70; i++) {
      const c = i % 2;
      const t = random();
      if (name === "moons") {
        const a = Math.PI * t;
        points.push(c ? [1 - Math.cos(a), 0.5 - Math.sin(a), c] : [Math.cos(a), Math.sin(a), c]);
      } else if (name === "circles") {
        const a = 2 * Math.PI * t;
        const r = c ? 0.5 : 1;
        points.push([r * Math.cos(a), r * Math.sin(a), c]);
      } else if (name === "blobs") {
        const k = i % 3;
        const centres = [[-0.8, -0.6], [0.8, -0.4], [0, 0.8]];
        points.push([centres[k][0] + jitter(0.7), centres[k][1] + jitter(0.7), k]);
      } else if (name === "xor") {
        const x = random() * 2 - 1;
        const y = random() * 2 - 1;
        points.push([x, y, x * y > 0 ? 1 : 0]);
      } else if (name === "spiral") {
        const a = 3 * Math.PI * t + Math.PI * c;
        points.push([t * Math.cos(a), t * Math.sin(a), c]);
      } else {
        const x = random() * 2 - 1;
        points.push([x, Math.sin(Math.PI * x) * 0.8 + jitter(0.25), -1]);
      }
    }
    const xs = points.map((p) => p[0]);
    const ys = points.map((p) => p[1]);
    const [lx, hx, ly, hy] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    for (const [x, y, c] of points) {
      ctx.beginPath();
      ctx.arc(6 + ((x - lx) / (hx - lx || 1)) * (s - 12), s - 6 - ((y - ly) / (hy - ly || 1)) * (s - 12), 2, 0, 2 * Math.PI);
      ctx.fillStyle = c < 0 ? "#52606d" : classColour(c);
      ctx.fill();
    }
  }

  // ----- start ------------------------------------------------------------------

  async function start() {
    try {
      ui.options = await api("GET", "/api/options");
      buildControls(ui.options);
      wireControls();
      let summary = null;
      const linked = linkedSetup();
      if (linked) {  // validated by the server like any setup; a refused one is said, and the page goes on
        summary = await api("POST", "/api/sessions", linked).catch((error) => {
          showMessage(`this link's setup is refused: ${error.message}`);
          return null;
        });
      }
      const saved = summary ? null : sessionStorage.getItem(SESSION_KEY);
      if (saved) summary = await api("GET", `/api/sessions/${saved}`).catch(() => null);
      // A reload keeps the tab's session only while it can train: a diverged one gives way to a fresh
      // session of the same setup, from epoch 0 (and one the server has dropped, to the default setup).
      if (summary && summary.status !== "paused" && summary.status !== "playing") {
        summary = await api("POST", "/api/sessions", summary.setup).catch(() => null);
      }
      if (!summary) summary = await api("POST", "/api/sessions", {});
      ui.session = summary.session;
      sessionStorage.setItem(SESSION_KEY, ui.session);
      applySummary(summary);
      showSetup(ui.setup);
      connect();
    } catch (error) {
      showMessage(`cannot start: ${error.message}`);
    }
  }

  start();
})();
