/* wfrun console: small progressive enhancements. Every page works without this file;
   with it, media inputs upload as you choose them (with a preview), the quote follows the
   form, and a run's page follows its event stream live. */
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function post(url, body) {
    return fetch(url, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "Accept": "application/json" }
    }).then(function (r) { return r.json(); });
  }

  function errorText(answer) {
    var e = answer && answer.data && answer.data.error;
    return e ? (e.detail || e.reason) : (answer && answer.msg) || "error";
  }

  function setupForm(form) {
    var amount = document.getElementById("quote-amount");
    var problem = document.getElementById("quote-error");
    var timer = null;
    function quote() {
      var body = new FormData(form);
      post(form.dataset.quote, body).then(function (answer) {
        if (answer.code === 0) {
          amount.textContent = answer.data.quote_amount;
          problem.textContent = ""; problem.classList.add("hidden");
        } else {
          problem.textContent = errorText(answer); problem.classList.remove("hidden");
        }
      });
    }
    function later() { clearTimeout(timer); timer = setTimeout(quote, 250); }
    form.addEventListener("input", later);
    form.addEventListener("change", later);
    form.querySelectorAll('input[type="file"][data-target]').forEach(function (picker) {
      picker.addEventListener("change", function () { upload(picker, quote); });
    });
  }

  function upload(picker, then) {
    var target = document.getElementById(picker.dataset.target);
    var preview = document.getElementById(picker.dataset.target + "_preview");
    var files = Array.prototype.slice.call(picker.files || []);
    if (!files.length) { return; }
    preview.textContent = "…";
    Promise.all(files.map(function (file) {
      var body = new FormData();
      body.append("file", file, file.name);
      return post(picker.form.dataset.upload, body).then(function (answer) {
        if (answer.code !== 0) { throw new Error(errorText(answer)); }
        return { uri: answer.data.asset_uri, file: file };
      });
    })).then(function (done) {
      target.value = done.map(function (d) { return d.uri; }).join("\n");
      preview.textContent = "";
      done.forEach(function (d) {
        if (d.file.type.indexOf("image/") === 0) {
          var img = document.createElement("img");
          img.src = URL.createObjectURL(d.file); img.alt = d.file.name;
          preview.appendChild(img);
        } else {
          preview.appendChild(document.createTextNode(d.file.name + " "));
        }
      });
      preview.dataset.uploaded = "true";
      then();
    }).catch(function (err) {
      preview.textContent = err.message; preview.classList.add("alert");
    });
  }

  // While queued, the place and wait come from the run page itself (the stream's status
  // events carry no queue place): fetched every few seconds, its #queue-info swapped in.
  function followQueue(run, status) {
    function poll() {
      var queue = document.getElementById("queue-info");
      if (!queue || status.dataset.status !== "queued") { return; }
      fetch(window.location.href, { credentials: "same-origin" }).then(function (r) {
        return r.ok ? r.text() : null;
      }).then(function (html) {
        if (html === null) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("queue-info");
        var now = document.getElementById("queue-info");
        if (!now) { return; }
        if (fresh) { now.textContent = fresh.textContent; } else { now.remove(); }
      }).catch(function () { /* the next poll tries again */ }).then(function () {
        window.setTimeout(poll, 5000);
      });
    }
    window.setTimeout(poll, 5000);
  }

  function setupRun(run) {
    if (run.dataset.terminal === "true" || !window.EventSource) { return; }
    var status = document.getElementById("run-status");
    var bar = document.getElementById("run-progress");
    var logs = document.getElementById("run-logs");
    var note = document.getElementById("stream-note");
    var words = JSON.parse(run.dataset.words || "{}");
    var delay = 1000;
    function data(e) { try { return JSON.parse(e.data); } catch (x) { return {}; } }
    function line(d) {
      var li = document.createElement("li");
      li.className = "lvl-" + (d.level || "info");
      li.textContent = (d.at || "") + " " + (d.node_id ? d.node_id + " " : "") + (d.message || "");
      logs.appendChild(li);
      if (d.progress_percent !== null && d.progress_percent !== undefined) {
        bar.value = d.progress_percent;
      }
    }
    function connect() {
      var source = new EventSource(run.dataset.events);
      source.addEventListener("open", function () { delay = 1000; note.hidden = true; });
      source.addEventListener("status", function (e) {
        var d = data(e);
        status.dataset.status = d.run_status;
        status.className = "status s-" + d.run_status;
        status.textContent = words[d.run_status] || d.run_status;
        var queue = document.getElementById("queue-info");
        if (queue && d.run_status !== "queued") { queue.remove(); }
      });
      source.addEventListener("progress", function (e) { line(data(e)); });
      source.addEventListener("log", function (e) { line(data(e)); });
      source.addEventListener("done", function () {
        source.close();
        bar.value = 100;
        window.location.reload();
      });
      // A lost stream: say so and reconnect with a growing pause (1 s, 2 s, … at most 30 s).
      source.onerror = function () {
        source.close();
        note.textContent = (words._lost || "Reconnecting in {s} s").replace("{s}", String(delay / 1000));
        note.hidden = false;
        window.setTimeout(connect, delay);
        delay = Math.min(delay * 2, 30000);
      };
    }
    connect();
    followQueue(run, status);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form.runform").forEach(setupForm);
    var run = document.getElementById("run");
    if (run) { setupRun(run); }
    document.documentElement.dataset.enhanced = "true";  // listeners are in place
  });
})();
