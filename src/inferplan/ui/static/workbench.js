// The workbench's few behaviours: live fit results, job progress by server-sent events, copy buttons.
"use strict";

function runScripts(container) {
  // HTML put in with innerHTML does not run its scripts (the plotly figures); run them in order
  container.querySelectorAll("script").forEach((old) => {
    const s = document.createElement("script");
    s.text = old.textContent;
    old.replaceWith(s);
  });
}

function liveForm(form) {
  const target = document.getElementById(form.dataset.target);
  let timer = null, seq = 0;
  const update = () => {
    const mine = ++seq;
    const params = new URLSearchParams(new FormData(form));
    history.replaceState(null, "", "?" + params.toString());
    document.querySelectorAll("#record-form input[type=hidden], form[action='/fit/upload'] input[type=hidden]")
      .forEach((h) => { if (params.has(h.name)) h.value = params.get(h.name); });
    fetch(form.dataset.live + "?" + params.toString()).then((r) => r.text()).then((html) => {
      if (mine !== seq) return;  // an older answer, overtaken by newer inputs
      target.innerHTML = html;
      runScripts(target);
      const err = document.getElementById("form-error");
      if (err) err.remove();
    });
  };
  form.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(update, 250); });
  form.addEventListener("change", () => { clearTimeout(timer); timer = setTimeout(update, 50); });
}

function watchJob(box) {
  const show = (job) => {
    box.dataset.state = job.state;
    document.getElementById("job-state").textContent = job.state;
    document.getElementById("job-state").className = "state-" + job.state;
    document.getElementById("job-message").textContent = job.message;
    const bar = document.getElementById("job-progress");
    if (job.fraction !== null) bar.value = job.fraction; else bar.removeAttribute("value");
    if (job.error) { const e = document.getElementById("job-error"); e.textContent = job.error; e.hidden = false; }
    if (job.run_id) {
      const p = document.getElementById("job-run");
      const href = "/runs/" + job.run_id + (job.beside ? "?beside=" + encodeURIComponent(job.beside) : "");
      p.innerHTML = "";
      const a = document.createElement("a");
      a.href = href; a.textContent = "Open run " + job.run_id; a.id = "open-run";
      p.appendChild(a); p.hidden = false;
    }
    if (["done", "failed", "cancelled"].includes(job.state)) document.getElementById("cancel-form").hidden = true;
  };
  if (["done", "failed", "cancelled"].includes(box.dataset.state)) return;
  const events = new EventSource("/jobs/" + box.dataset.job + "/events");
  events.onmessage = (e) => {
    const job = JSON.parse(e.data);
    show(job);
    if (["done", "failed", "cancelled"].includes(job.state)) events.close();
  };
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form[data-live]").forEach(liveForm);
  const job = document.getElementById("job");
  if (job) watchJob(job);
  document.querySelectorAll("button.copy").forEach((b) => b.addEventListener("click", (e) => {
    e.preventDefault();
    navigator.clipboard.writeText(document.getElementById(b.dataset.target).textContent)
      .then(() => { b.textContent = "copied"; }, () => { b.textContent = "select and copy"; });
  }));
});
