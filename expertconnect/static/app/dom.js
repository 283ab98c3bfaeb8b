// Small DOM helpers: element building without innerHTML (no markup from data, ever), forms
// whose API errors land next to the field they name, and announcements for screen readers.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

let uid = 0;

// One labelled control with a slot for its error: {name, label, type, ...attrs} or a select
// ({options: [[value, text], ...]}) or a textarea (type: "textarea").
export function field(spec) {
  const id = `f${++uid}-${spec.name}`;
  const { label, options, type = "text", hint, ...rest } = spec;
  const errorId = `${id}-error`;
  const common = { id, name: spec.name, "aria-describedby": errorId, ...rest };
  let control;
  if (options) {
    control = h("select", common, options.map(([v, t]) => h("option", { value: v }, t)));
    if (spec.value !== undefined) control.value = spec.value;
  } else if (type === "textarea") {
    control = h("textarea", { ...common, value: undefined }, spec.value || "");
  } else {
    control = h("input", { type, ...common });
  }
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    control,
    hint ? h("small", { class: "hint" }, hint) : null,
    h("p", { class: "field-error", id: errorId, "data-error-for": spec.name }),
  );
}

// A form: its fields, a submit button and a general alert; `submit(values, form)` may throw an
// ApiError, whose field errors are shown under their fields and the rest in the alert.
export function form({ label, fields, submitText, submit, className }) {
  const alert = h("p", { class: "alert", role: "alert", hidden: true });
  const button = h("button", { type: "submit" }, submitText);
  const el = h(
    "form",
    { class: `form ${className || ""}`, "aria-label": label, novalidate: true },
    fields.map((f) => (f instanceof Node ? f : field(f))),
    alert,
    button,
  );
  el.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(el);
    button.disabled = true;
    try {
      await submit(values(el), el);
    } catch (error) {
      showErrors(el, error);
    } finally {
      button.disabled = false;
    }
  });
  return el;
}

export function values(formEl) {
  const out = {};
  for (const [k, v] of new FormData(formEl).entries()) out[k] = typeof v === "string" ? v.trim() : v;
  return out;
}

export function clearErrors(formEl) {
  for (const p of formEl.querySelectorAll(".field-error")) p.textContent = "";
  for (const c of formEl.querySelectorAll("[aria-invalid]")) c.removeAttribute("aria-invalid");
  const alert = formEl.querySelector(".alert");
  if (alert) { alert.textContent = ""; alert.hidden = true; }
}

// {"errors": {field: [...]}} next to each field (or in the alert for a field the form does not
// show), {"error": "..."} in the alert; focus goes to the first problem.
export function showErrors(formEl, error) {
  const alert = formEl.querySelector(".alert");
  const general = [];
  let first = null;
  if (error && error.fieldErrors) {
    for (const [name, messages] of Object.entries(error.fieldErrors)) {
      const slot = formEl.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
      const control = formEl.querySelector(`[name="${CSS.escape(name)}"]`);
      const text = [].concat(messages).join(" ");
      if (slot) {
        slot.textContent = text;
        if (control) {
          control.setAttribute("aria-invalid", "true");
          first = first || control;
        }
      } else {
        general.push(`${name}: ${text}`);
      }
    }
  } else {
    general.push((error && error.message) || String(error));
  }
  if (general.length && alert) {
    alert.textContent = general.join(" ");
    alert.hidden = false;
  }
  if (first) first.focus();
  else if (alert && !alert.hidden) { alert.tabIndex = -1; alert.focus(); }
}

// An alert that is not tied to a form (a failed button action).
export function flash(container, error) {
  let alert = container.querySelector(":scope > .alert");
  if (!alert) {
    alert = h("p", { class: "alert", role: "alert", tabindex: "-1" });
    container.prepend(alert);
  }
  alert.textContent = error.message || String(error);
  alert.hidden = false;
  alert.focus();
}

export function announce(text) {
  const region = document.getElementById("announcer");
  region.append(h("p", {}, text));
  while (region.childElementCount > 5) region.firstElementChild.remove();
}

// el.replaceChildren(...) would write null as the text "null": skip absent children.
export function fill(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}
