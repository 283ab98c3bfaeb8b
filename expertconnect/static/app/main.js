// The ExpertConnect web client: a hash-routed single page over the REST API, kept live by the
// /ws/ stream. Views are functions that fill <main> and may take live frames (view.onFrame).

import { api, query, session, setUnauthorizedHandler } from "./api.js";
import { announce, field, fill, flash, form, h } from "./dom.js";
import { LiveStream } from "./live.js";
import { DAYS, formatRange, formatter, wallToUtc } from "./time.js";

const main = document.getElementById("main");
const state = { me: null, live: null, fmt: formatter("UTC"), categories: null, view: null };

// ------------------------------------------------------------------ session

async function startSession(token) {
  session.token = token;
  state.me = await api("GET", "/api/users/me/");
  state.fmt = formatter(state.me.timezone);
  document.getElementById("nav").hidden = false;
  if (state.live) state.live.stop();
  state.live = new LiveStream(token);
  state.live.addEventListener("frame", (e) => onFrame(e.detail));
  state.live.addEventListener("status", (e) => onConnection(e.detail));
  state.live.addEventListener("resync", () => { refreshBadges(); render(); });
  state.live.addEventListener("unauthorized", () => endSession("Your session has ended. Please log in again."));
  refreshBadges();
}

function endSession(message) {
  session.token = null;
  if (state.live) state.live.stop();
  state.live = null;
  state.me = null;
  document.getElementById("nav").hidden = true;
  document.getElementById("connection").hidden = true;
  state.notice = message;
  if (location.hash !== "#/login") location.hash = "#/login";
  else render();
}

setUnauthorizedHandler(() => endSession("Your session has ended. Please log in again."));

document.getElementById("logout").addEventListener("click", async () => {
  try { await api("POST", "/api/users/logout/"); } catch { /* the token is dropped anyway */ }
  endSession("You are logged out.");
});

async function categories() {
  state.categories = state.categories || (await api("GET", "/api/categories/"));
  return state.categories;
}

// ------------------------------------------------------------------ live updates

// Frames come in bursts (a replay after a reconnection): one refresh per burst.
let badgeTimer = null;
function refreshBadges() {
  clearTimeout(badgeTimer);
  badgeTimer = setTimeout(loadBadges, 50);
}

async function loadBadges() {
  if (!session.token) return;
  try {
    const [{ unread_count }, conversations] = await Promise.all([
      api("GET", "/api/notifications/unread_count/"),
      api("GET", "/api/conversations/?limit=200"),
    ]);
    setBadge("badge", unread_count, "unread notifications");
    setBadge("chat-badge", conversations.reduce((n, c) => n + c.unread_count, 0), "unread messages");
  } catch { /* shown again on the next update */ }
}

function setBadge(id, count, what) {
  const badge = document.getElementById(id);
  badge.textContent = count ? String(count) : "";
  badge.hidden = !count;
  badge.setAttribute("aria-label", `${count} ${what}`);
}

function onFrame(frame) {
  if (frame.type === "message.receive" && frame.message.sender_id !== state.me.id) {
    announce(`New message from ${frame.message.sender_name}`);
  }
  if (frame.type === "notification.receive" && !frame.notification.is_read) {
    announce(frame.notification.title);
  }
  if (frame.type !== "message.read") refreshBadges();
  if (state.view && state.view.onFrame) state.view.onFrame(frame);
}

function onConnection({ state: s, resumed }) {
  const banner = document.getElementById("connection");
  const text = {
    offline: "You are offline. Live updates will resume when the connection is back.",
    reconnecting: "Reconnecting…",
  }[s];
  if (text) {
    banner.textContent = text;
    banner.hidden = false;
    banner.dataset.state = s;
  } else {
    banner.hidden = true;
    banner.dataset.state = "connected";
    if (resumed) {
      announce("Reconnected. Anything you missed is shown.");
      refreshBadges();
    }
  }
}

// ------------------------------------------------------------------ router

const routes = [
  [/^\/login$/, viewLogin, false],
  [/^\/register$/, viewRegister, false],
  [/^\/profile$/, viewProfile, true],
  [/^\/experts$/, viewExperts, true],
  [/^\/experts\/(\d+)$/, viewExpert, true],
  [/^\/meetings$/, viewMeetings, true],
  [/^\/meetings\/(\d+)$/, viewMeeting, true],
  [/^\/credits$/, viewCredits, true],
  [/^\/messages$/, viewConversations, true],
  [/^\/messages\/(\d+)$/, viewChat, true],
  [/^\/notifications$/, viewNotifications, true],
];

async function render() {
  const path = location.hash.replace(/^#/, "") || "/";
  if (path === "/") {
    location.hash = session.token ? "#/experts" : "#/login";
    return;
  }
  if (session.token && !state.me) {
    try { await startSession(session.token); } catch { endSession(); return; }
  }
  const match = routes.find(([re]) => re.test(path));
  if (!match) { location.hash = "#/"; return; }
  const [re, view, needsLogin] = match;
  if (needsLogin && !session.token) { location.hash = "#/login"; return; }
  state.view = { onFrame: null };
  const current = state.view;
  fill(main);
  try {
    await view(current, ...path.match(re).slice(1));
  } catch (error) {
    if (state.view === current) flash(main, error);
  }
  for (const a of document.querySelectorAll("#nav a")) {
    if (path.startsWith(a.getAttribute("href").slice(1))) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  // Focus the new page's heading, so keyboard and screen-reader users land on it.
  const heading = main.querySelector("h1");
  if (heading && state.view === current) {
    heading.tabIndex = -1;
    heading.focus();
  }
}

window.addEventListener("hashchange", render);
render();

function page(title, ...children) {
  fill(main, h("h1", {}, title), ...children);
}

function section(title, ...children) {
  return h("section", { "aria-label": title }, h("h2", {}, title), ...children);
}

// ------------------------------------------------------------------ accounts

function viewLogin() {
  const notice = state.notice;
  state.notice = null;
  page(
    "Log in",
    notice ? h("p", { class: "notice", role: "status" }, notice) : null,
    form({
      label: "Log in",
      submitText: "Log in",
      fields: [
        { name: "username", label: "Username", autocomplete: "username", required: true },
        { name: "password", label: "Password", type: "password", autocomplete: "current-password", required: true },
      ],
      submit: async (v) => {
        const r = await api("POST", "/api/users/login/", v);
        await startSession(r.token);
        location.hash = "#/experts";
      },
    }),
    h("p", {}, "New here? ", h("a", { href: "#/register" }, "Create an account")),
  );
}

function viewRegister() {
  page(
    "Create an account",
    form({
      label: "Create an account",
      submitText: "Create account",
      fields: [
        { name: "username", label: "Username", autocomplete: "username", required: true },
        { name: "email", label: "Email", type: "email", autocomplete: "email", required: true },
        { name: "first_name", label: "First name", autocomplete: "given-name" },
        { name: "last_name", label: "Last name", autocomplete: "family-name" },
        { name: "password", label: "Password", type: "password", autocomplete: "new-password", required: true, hint: "8 to 72 characters" },
      ],
      submit: async (v) => {
        const r = await api("POST", "/api/users/register/", v);
        await startSession(r.token);
        location.hash = "#/profile";
      },
    }),
    h("p", {}, "Have an account? ", h("a", { href: "#/login" }, "Log in")),
  );
}

// ------------------------------------------------------------------ my profile

async function viewProfile(view) {
  const me = (state.me = await api("GET", "/api/users/me/"));
  const cats = await categories();
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  const zoneList = h("datalist", { id: "zones" }, zones.map((z) => h("option", { value: z })));
  const skills = h("ul", { class: "list", "aria-label": "My skills" });
  const slots = h("ul", { class: "list", "aria-label": "My weekly availability" });

  async function loadSkills() {
    const rows = await api("GET", `/api/user-skills/${query({ user_id: me.id, limit: 200 })}`);
    fill(skills, 
      ...(rows.length ? rows : [null]).map((s) => s === null
        ? h("li", { class: "empty" }, "No skills yet.")
        : h("li", {}, `${s.skill_name} (${s.category_name}, ${s.proficiency_level}) `,
            h("button", { type: "button", class: "link", "aria-label": `Remove skill ${s.skill_name}`,
              onclick: async (e) => { try { await api("DELETE", `/api/user-skills/${s.id}/`); await loadSkills(); } catch (err) { flash(e.target.closest("section"), err); } } }, "Remove"))),
    );
  }

  async function loadSlots() {
    const rows = await api("GET", `/api/user-availability/${query({ user_id: me.id })}`);
    fill(slots, 
      ...(rows.length ? rows : [null]).map((s) => s === null
        ? h("li", { class: "empty" }, "No availability yet: anyone may request any time.")
        : h("li", {}, `${DAYS[s.day_of_week]} ${s.start_time.slice(0, 5)}–${s.end_time.slice(0, 5)} `,
            h("button", { type: "button", class: "link", "aria-label": `Remove ${DAYS[s.day_of_week]} ${s.start_time.slice(0, 5)}`,
              onclick: async (e) => { try { await api("DELETE", `/api/user-availability/${s.id}/`); await loadSlots(); } catch (err) { flash(e.target.closest("section"), err); } } }, "Remove"))),
    );
  }

  const saved = h("p", { role: "status", class: "status" });
  page(
    "My profile",
    section(
      "About me",
      form({
        label: "About me",
        submitText: "Save profile",
        fields: [
          { name: "first_name", label: "First name", autocomplete: "given-name", value: me.first_name },
          { name: "last_name", label: "Last name", autocomplete: "family-name", value: me.last_name },
          { name: "bio", label: "Bio", type: "textarea", value: me.bio },
          { name: "timezone", label: "Time zone", list: "zones", value: me.timezone, hint: "An IANA name, e.g. Europe/Berlin. Times are shown in it." },
        ],
        submit: async (v) => {
          state.me = await api("PUT", "/api/users/me/", v);
          state.fmt = formatter(state.me.timezone);
          saved.textContent = "Profile saved.";
        },
      }),
      zoneList,
      saved,
    ),
    section(
      "Skills",
      skills,
      form({
        label: "Add a skill",
        submitText: "Add skill",
        className: "inline",
        fields: [
          { name: "category", label: "Category", options: cats.map((c) => [c.id, c.name]) },
          { name: "skill_name", label: "Skill", required: true },
          { name: "proficiency_level", label: "Level", options: ["beginner", "intermediate", "advanced", "expert"].map((l) => [l, l]) },
        ],
        submit: async (v, f) => {
          await api("POST", "/api/user-skills/", { ...v, category: Number(v.category) });
          f.querySelector("[name=skill_name]").value = "";
          await loadSkills();
        },
      }),
    ),
    section(
      "Weekly availability",
      h("p", { class: "hint" }, `Wall-clock times in your time zone (${me.timezone}).`),
      slots,
      form({
        label: "Add availability",
        submitText: "Add time",
        className: "inline",
        fields: [
          { name: "day_of_week", label: "Day", options: DAYS.map((d, i) => [i, d]) },
          { name: "start_time", label: "From", type: "time", value: "09:00", required: true },
          { name: "end_time", label: "To", type: "time", value: "17:00", required: true },
        ],
        submit: async (v) => {
          await api("POST", "/api/user-availability/", { ...v, day_of_week: Number(v.day_of_week) });
          await loadSlots();
        },
      }),
    ),
  );
  await Promise.all([loadSkills(), loadSlots()]);
}

// ------------------------------------------------------------------ experts

function stars(card) {
  return card.average_rating === null || card.average_rating === undefined
    ? "No rating yet"
    : `Rated ${Number(card.average_rating).toFixed(1)} / 5 (${card.review_count} review${card.review_count === 1 ? "" : "s"})`;
}

function displayName(u) {
  return `${u.first_name || ""} ${u.last_name || ""}`.trim() || u.username;
}

async function viewExperts(view) {
  const cats = await categories();
  const results = h("ul", { class: "cards", "aria-label": "Experts found", "aria-live": "polite" });
  async function search(v) {
    const params = { q: v.q, category: v.category, min_rating: v.min_rating, limit: 50 };
    if (v.available_at) params.available_at = wallToUtc(v.available_at, state.me.timezone);
    const rows = await api("GET", `/api/experts/${query(params)}`);
    fill(results, 
      ...(rows.length ? rows : [null]).map((c) => c === null
        ? h("li", { class: "empty" }, "No expert matches.")
        : h("li", { class: "card" },
            h("h2", {}, h("a", { href: `#/experts/${c.id}` }, displayName(c))),
            h("p", {}, stars(c)),
            c.credits_per_hour ? h("p", {}, `${c.credits_per_hour} credits per hour`) : null,
            h("p", { class: "skills" }, c.skills.map((s) => s.skill_name).join(", ") || "No skills listed"),
            c.bio ? h("p", {}, c.bio) : null)),
    );
  }
  page(
    "Find experts",
    form({
      label: "Search experts",
      submitText: "Search",
      className: "inline",
      fields: [
        { name: "q", label: "Search", type: "search", placeholder: "skill, name or topic" },
        { name: "category", label: "Category", options: [["", "Any"], ...cats.map((c) => [c.id, c.name])] },
        { name: "min_rating", label: "Minimum rating", options: [["", "Any"], ["1", "1+"], ["2", "2+"], ["3", "3+"], ["4", "4+"], ["5", "5"]] },
        { name: "available_at", label: `Free at (${state.me.timezone})`, type: "datetime-local" },
      ],
      submit: search,
    }),
    results,
  );
  await search({});
}

async function viewExpert(view, rawId) {
  const id = Number(rawId);
  const [card, cats] = await Promise.all([api("GET", `/api/users/${id}/`), categories()]);
  const from = new Date(Date.now() + 5 * 60 * 1000);
  const to = new Date(from.getTime() + 7 * 24 * 3600 * 1000);
  const free = await api("GET", `/api/users/${id}/slots/${query({ from: from.toISOString(), to: to.toISOString(), duration: 60 })}`);
  const booking = h("div", { id: "booking" });

  function book(slot) {
    fill(booking, 
      h("h2", {}, "Request a meeting"),
      h("p", {}, formatRange(state.fmt, slot.start, slot.end), ` (${state.me.timezone})`),
      form({
        label: "Request a meeting",
        submitText: "Send request",
        fields: [
          { name: "title", label: "Title", required: true },
          { name: "category_id", label: "Category", options: cats.map((c) => [c.id, c.name]) },
          { name: "description", label: "What would you like to discuss?", type: "textarea" },
        ],
        submit: async (v) => {
          const meeting = await api("POST", "/api/meetings/", {
            ...v,
            category_id: Number(v.category_id),
            expert_id: id,
            scheduled_start: slot.start,
            scheduled_end: slot.end,
          });
          announce("Meeting requested");
          location.hash = `#/meetings/${meeting.id}`;
        },
      }),
    );
    booking.querySelector("input").focus();
  }

  page(
    displayName(card),
    h("p", { class: "rating" }, stars(card)),
    card.credits_per_hour ? h("p", {}, `${card.credits_per_hour} credits per hour`) : null,
    card.bio ? h("p", {}, card.bio) : null,
    h("p", { class: "hint" }, `Their time zone: ${card.timezone}. Times below are in yours (${state.me.timezone}).`),
    section("Skills", h("ul", { class: "list" }, card.skills.map((s) => h("li", {}, `${s.skill_name} (${s.category_name}, ${s.proficiency_level})`)))),
    id === state.me.id ? null : section(
      "Free slots (next 7 days, 1 hour)",
      free.length
        ? h("ul", { class: "slots" }, free.slice(0, 40).map((slot) =>
            h("li", {}, h("button", { type: "button", class: "slot", onclick: () => book(slot) }, formatRange(state.fmt, slot.start, slot.end)))))
        : h("p", { class: "empty" }, "No free slot in the next 7 days."),
      booking,
      h("p", {}, h("a", { href: `#/messages/${id}` }, `Message ${displayName(card)}`)),
    ),
    section(
      "Reviews",
      card.reviews.length
        ? h("ul", { class: "list reviews" }, card.reviews.map((r) =>
            h("li", {}, h("strong", {}, `${r.rating} / 5`), ` by ${r.reviewer_name}: `, r.review_text || "")))
        : h("p", { class: "empty" }, "No reviews yet."),
    ),
  );
}

// ------------------------------------------------------------------ meetings

function otherParty(m) {
  return m.requester_id === state.me.id ? m.expert_name : m.requester_name;
}

// The status changes the API allows the caller on a meeting in its current state.
function actionsFor(m) {
  const expert = m.expert_id === state.me.id;
  if (m.status === "pending") return expert ? ["confirmed", "cancelled"] : ["cancelled"];
  if (m.status === "confirmed") return ["completed", "cancelled"];
  return [];
}

const ACTION_TEXT = { confirmed: "Confirm", cancelled: "Cancel", completed: "Mark completed" };

function statusButtons(m, after) {
  return actionsFor(m).map((status) =>
    h("button", {
      type: "button",
      class: status === "cancelled" ? "secondary" : "",
      "aria-label": `${ACTION_TEXT[status]}: ${m.title}`,
      onclick: async (e) => {
        const box = e.target.closest("li, section, main");
        try {
          await api("PATCH", `/api/meetings/${m.id}/update_status/`, { status });
          announce(`Meeting ${status}`);
          await after();
        } catch (err) { flash(box, err); }
      },
    }, ACTION_TEXT[status]));
}

async function viewMeetings(view) {
  const list = h("ul", { class: "cards", "aria-label": "My meetings" });
  const filters = h("form", { class: "form inline", "aria-label": "Filter meetings" },
    field({ name: "status", label: "Status", options: [["", "Any"], ["pending", "Pending"], ["confirmed", "Confirmed"], ["completed", "Completed"], ["cancelled", "Cancelled"]] }),
    field({ name: "role", label: "My role", options: [["", "Any"], ["requester", "Requester"], ["expert", "Expert"]] }));
  async function load() {
    const f = new FormData(filters);
    const rows = await api("GET", `/api/meetings/${query({ status: f.get("status"), role: f.get("role"), limit: 100 })}`);
    fill(list, 
      ...(rows.length ? rows : [null]).map((m) => m === null
        ? h("li", { class: "empty" }, "No meetings.")
        : h("li", { class: "card meeting", "data-meeting-id": m.id, "data-status": m.status },
            h("h2", {}, h("a", { href: `#/meetings/${m.id}` }, m.title)),
            h("p", {}, `${m.expert_id === state.me.id ? "Requested by" : "With"} ${otherParty(m)} · ${formatRange(state.fmt, m.scheduled_start, m.scheduled_end)}`),
            h("p", {}, h("span", { class: `status-tag ${m.status}` }, m.status)),
            h("div", { class: "actions" }, statusButtons(m, load)))),
    );
  }
  filters.addEventListener("change", () => load().catch((e) => flash(main, e)));
  view.onFrame = (frame) => { if (frame.type === "notification.receive") load().catch(() => {}); };
  page("My meetings", filters, list);
  await load();
}

const PAYMENT_TEXT = {
  none: "Not paid",
  held: "Paid: held until the meeting is completed",
  released: "Paid: released to the expert",
  refunded: "Refunded",
};

async function viewMeeting(view, rawId) {
  const id = Number(rawId);
  const body = h("div");
  const note = h("p", { role: "status", class: "status", id: "meeting-note" });
  async function load() {
    const m = await api("GET", `/api/meetings/${id}/`);
    const requester = m.requester_id === state.me.id;
    const payment = m.payment_status !== undefined
      ? h("p", { class: "payment", "data-payment-status": m.payment_status },
          PAYMENT_TEXT[m.payment_status] || m.payment_status,
          m.paid_credits ? ` (${m.paid_credits} credits)` : "")
      : null;
    const reviewed = (m.reviews || []).some((r) => r.reviewer_id === state.me.id);
    fill(body, 
      h("p", {}, `${requester ? "Expert" : "Requested by"}: ${otherParty(m)}`),
      h("p", {}, formatRange(state.fmt, m.scheduled_start, m.scheduled_end), ` (${state.me.timezone})`),
      h("p", {}, "Status: ", h("span", { class: `status-tag ${m.status}`, id: "meeting-status" }, m.status)),
      m.price_credits ? h("p", {}, `Price: ${m.price_credits} credits`) : null,
      payment,
      m.description ? h("p", {}, m.description) : null,
      h("div", { class: "actions" }, statusButtons(m, load)),
      requester && m.status !== "cancelled" ? section("Pay", form({
        label: "Pay for this meeting",
        submitText: "Pay",
        className: "inline",
        fields: [{ name: "amount", label: "Credits", type: "number", min: 1, value: m.price_credits || 1, inputmode: "numeric" }],
        submit: async (v) => {
          const r = await api("POST", "/api/credits/transfer/", { meeting_id: id, amount: Number(v.amount) });
          await load();
          note.textContent = `Paid ${v.amount} credits. Your balance: ${r.new_balance}.`;
        },
      })) : null,
      m.status === "completed" && !reviewed ? section("Leave a review", form({
        label: "Leave a review",
        submitText: "Send review",
        fields: [
          { name: "rating", label: "Rating", options: [["5", "5 – excellent"], ["4", "4"], ["3", "3"], ["2", "2"], ["1", "1 – poor"]] },
          { name: "review_text", label: "Review", type: "textarea" },
        ],
        submit: async (v) => {
          await api("POST", "/api/reviews/", {
            meeting_id: id,
            reviewee_id: requester ? m.expert_id : m.requester_id,
            rating: Number(v.rating),
            review_text: v.review_text,
          });
          announce("Review sent");
          await load();
        },
      })) : null,
      (m.reviews || []).length ? section("Reviews", h("ul", { class: "list reviews" }, m.reviews.map((r) =>
        h("li", {}, h("strong", {}, `${r.rating} / 5`), ` ${r.reviewer_name} about ${r.reviewee_name}: ${r.review_text || ""}`)))) : null,
      h("p", {}, h("a", { href: `#/messages/${requester ? m.expert_id : m.requester_id}` }, `Message ${otherParty(m)}`)),
    );
    return m;
  }
  const m = await load();
  view.onFrame = (frame) => {
    if (frame.type === "notification.receive" && frame.notification.related_id === id) load().catch(() => {});
  };
  page(m.title, note, body);
}

// ------------------------------------------------------------------ credits

async function viewCredits(view) {
  const summary = h("dl", { class: "balance", "aria-live": "polite" });
  const ledger = h("tbody");
  async function load() {
    const [b, rows] = await Promise.all([
      api("GET", "/api/credits/balance/"),
      api("GET", "/api/credit-transactions/?limit=100"),
    ]);
    fill(summary, 
      h("dt", {}, "Balance"), h("dd", { id: "balance" }, String(b.balance)),
      b.held !== undefined ? [h("dt", {}, "Held for my meetings"), h("dd", { id: "held" }, String(b.held))] : null,
      b.incoming !== undefined ? [h("dt", {}, "Incoming (held for me)"), h("dd", { id: "incoming" }, String(b.incoming))] : null,
    );
    fill(ledger, ...rows.map((t) => h("tr", {},
      h("td", {}, state.fmt.format(new Date(t.created_at))),
      h("td", {}, t.transaction_type),
      h("td", { class: "num" }, String(t.amount)),
      h("td", {}, t.description))));
  }
  const amountHint = "US dollars: credits × price (1.00 by default)";
  const buy = form({
    label: "Buy credits",
    submitText: "Buy",
    className: "inline",
    fields: [
      { name: "credits_to_purchase", label: "Credits", type: "number", min: 1, value: 5, inputmode: "numeric" },
      { name: "amount", label: "Amount", value: "5.00", inputmode: "decimal", hint: amountHint },
      { name: "payment_method", label: "Pay with", options: [["credit_card", "Credit card"], ["debit_card", "Debit card"], ["paypal", "PayPal"], ["bank_transfer", "Bank transfer"]] },
    ],
    submit: async (v) => {
      await api("POST", "/api/payments/purchase_credits/", { ...v, credits_to_purchase: Number(v.credits_to_purchase) });
      announce("Credits bought");
      await load();
    },
  });
  const creditsInput = buy.querySelector("[name=credits_to_purchase]");
  creditsInput.addEventListener("input", () => {
    const n = Number(creditsInput.value);
    if (Number.isInteger(n) && n > 0) buy.querySelector("[name=amount]").value = n.toFixed(2);
  });
  view.onFrame = (frame) => { if (frame.type === "notification.receive") load().catch(() => {}); };
  page(
    "Credits",
    summary,
    section("Buy credits", buy),
    section("Ledger", h("div", { class: "scroll" }, h("table", {},
      h("caption", { class: "visually-hidden" }, "My credit transactions, newest first"),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "When"), h("th", { scope: "col" }, "Type"), h("th", { scope: "col" }, "Credits"), h("th", { scope: "col" }, "What"))),
      ledger))),
  );
  await load();
}

// ------------------------------------------------------------------ messages

async function viewConversations(view) {
  const list = h("ul", { class: "cards", "aria-label": "Conversations" });
  async function load() {
    const rows = await api("GET", "/api/conversations/?limit=100");
    fill(list, 
      ...(rows.length ? rows : [null]).map((c) => c === null
        ? h("li", { class: "empty" }, "No conversations yet. Message an expert from their profile.")
        : h("li", { class: "card" },
            h("h2", {}, h("a", { href: `#/messages/${c.user_id}` }, c.user_name),
              c.unread_count ? h("span", { class: "badge", "aria-label": `${c.unread_count} unread` }, String(c.unread_count)) : null),
            h("p", { class: "preview" }, c.last_message.content))),
    );
  }
  view.onFrame = (frame) => { if (frame.type === "message.receive") load().catch(() => {}); };
  page("Messages", list);
  await load();
}

async function viewChat(view, rawId) {
  const peer = Number(rawId);
  const card = await api("GET", `/api/users/${peer}/`);
  const log = h("ol", { class: "chat", "aria-label": `Conversation with ${displayName(card)}`, "aria-live": "polite" });
  const shown = new Set(); // message ids on screen: replays and echoes never show twice
  let readTimer = null;

  function add(m) {
    if (shown.has(m.id)) return;
    shown.add(m.id);
    const mine = m.sender_id === state.me.id;
    const item = h("li", { class: mine ? "mine" : "theirs", "data-message-id": m.id },
      h("span", { class: "who" }, mine ? "You" : m.sender_name),
      h("p", {}, m.content),
      h("time", { datetime: m.created_at }, state.fmt.format(new Date(m.created_at))),
      mine ? h("span", { class: "read", hidden: !m.is_read }, "Read") : null);
    // Keep id order even when a replayed message arrives after a newer live one.
    const next = [...log.children].find((li) => Number(li.dataset.messageId) > m.id);
    log.insertBefore(item, next || null);
    item.scrollIntoView({ block: "nearest" });
  }

  function markRead() {
    clearTimeout(readTimer);
    readTimer = setTimeout(() => {
      if (!navigator.onLine || state.view !== view) return;
      api("POST", "/api/messages/mark_read/", { with_user: peer }).catch(() => {});
    }, 150);
  }

  const history = await api("GET", `/api/messages/${query({ with_user: peer, limit: 100 })}`);
  history.reverse().forEach(add);
  markRead();

  view.onFrame = (frame) => {
    if (frame.type === "message.receive") {
      const m = frame.message;
      const other = m.sender_id === state.me.id ? m.receiver_id : m.sender_id;
      if (other !== peer) return;
      add(m);
      if (m.sender_id === peer) markRead();
    } else if (frame.type === "message.read" && frame.reader_id === peer) {
      for (const li of log.querySelectorAll("li.mine")) {
        if (Number(li.dataset.messageId) <= frame.up_to_id) li.querySelector(".read").hidden = false;
      }
    }
  };

  const composer = form({
    label: "Send a message",
    submitText: "Send",
    className: "composer",
    fields: [{ name: "content", label: `Message to ${displayName(card)}`, type: "textarea", rows: 2, required: true }],
    submit: async (v, f) => {
      const m = await api("POST", "/api/messages/", { receiver_id: peer, content: v.content });
      add(m);
      f.querySelector("[name=content]").value = "";
      f.querySelector("[name=content]").focus();
    },
  });
  composer.querySelector("textarea").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); composer.requestSubmit(); }
  });
  page(`Chat with ${displayName(card)}`, log, composer);
}

// ------------------------------------------------------------------ notifications

const NOTIFICATION_LINKS = {
  meeting_request: (n) => `#/meetings/${n.related_id}`,
  meeting_confirmed: (n) => `#/meetings/${n.related_id}`,
  meeting_completed: (n) => `#/meetings/${n.related_id}`,
  meeting_cancelled: (n) => `#/meetings/${n.related_id}`,
  meeting_reminder: (n) => `#/meetings/${n.related_id}`,
  payment_released: (n) => `#/meetings/${n.related_id}`,
  payment_refunded: (n) => `#/meetings/${n.related_id}`,
  credits_received: () => "#/credits",
  new_message: () => "#/messages",
};

async function viewNotifications(view) {
  const list = h("ul", { class: "cards", "aria-label": "Notifications" });
  async function load() {
    const rows = await api("GET", "/api/notifications/?limit=100");
    fill(list, 
      ...(rows.length ? rows : [null]).map((n) => n === null
        ? h("li", { class: "empty" }, "No notifications.")
        : h("li", { class: `card ${n.is_read ? "read" : "unread"}`, "data-notification-id": n.id },
            h("h2", {}, NOTIFICATION_LINKS[n.notification_type] && n.related_id
              ? h("a", { href: NOTIFICATION_LINKS[n.notification_type](n) }, n.title) : n.title,
              n.is_read ? null : h("span", { class: "tag" }, "new")),
            h("p", {}, n.content),
            h("time", { datetime: n.created_at }, state.fmt.format(new Date(n.created_at))),
            n.is_read ? null : h("button", { type: "button", class: "link", "aria-label": `Mark read: ${n.title}`,
              onclick: async () => { try { await api("PATCH", `/api/notifications/${n.id}/`, { is_read: true }); await load(); refreshBadges(); } catch (e) { flash(main, e); } } }, "Mark read"))),
    );
  }
  view.onFrame = (frame) => { if (frame.type === "notification.receive") load().catch(() => {}); };
  page(
    "Notifications",
    h("button", { type: "button", onclick: async () => {
      try { await api("POST", "/api/notifications/mark_all_read/"); await load(); refreshBadges(); } catch (e) { flash(main, e); }
    } }, "Mark all read"),
    list,
  );
  await load();
}
