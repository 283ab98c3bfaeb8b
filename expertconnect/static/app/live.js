// The /ws/ stream: one socket for everything of the user. It resumes with ?last_event_id=N
// after any drop (network gone, server restarted), so the server replays what was missed in
// order; consumers still dedupe by id, because a replayed frame may repeat one already seen
// over REST. While the browser is offline it does not retry (each failed attempt would only
// log an error); it reconnects at once when the network is back.

const LAST_EVENT_KEY = "expertconnect.last_event_id";
const RETRY_MIN_MS = 500;
// Doubling from half a second, capped: a restarted server is found within a few seconds.
const RETRY_MAX_MS = 4000;

export class LiveStream extends EventTarget {
  constructor(token) {
    super();
    this.token = token;
    this.socket = null;
    this.retryMs = RETRY_MIN_MS;
    this.timer = null;
    this.stopped = false;
    this.replayed = 0;
    this._online = () => { this._status("reconnecting"); this._connect(); };
    this._offline = () => { this._status("offline"); this._drop(); };
    window.addEventListener("online", this._online);
    window.addEventListener("offline", this._offline);
    this._connect();
  }

  get lastEventId() {
    const v = sessionStorage.getItem(LAST_EVENT_KEY);
    return v === null ? null : Number(v);
  }

  set lastEventId(v) {
    if (v === null) sessionStorage.removeItem(LAST_EVENT_KEY);
    else sessionStorage.setItem(LAST_EVENT_KEY, String(v));
  }

  stop() {
    this.stopped = true;
    window.removeEventListener("online", this._online);
    window.removeEventListener("offline", this._offline);
    this._drop();
    this.lastEventId = null;
  }

  _status(state, detail = {}) {
    this.dispatchEvent(new CustomEvent("status", { detail: { state, ...detail } }));
  }

  _drop() {
    clearTimeout(this.timer);
    if (this.socket) {
      const s = this.socket;
      this.socket = null;
      s.onclose = s.onmessage = s.onerror = null;
      s.close();
    }
  }

  _connect() {
    this._drop();
    if (this.stopped || !navigator.onLine) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const params = new URLSearchParams({ token: this.token });
    const resuming = this.lastEventId !== null;
    if (resuming) params.set("last_event_id", String(this.lastEventId));
    const socket = new WebSocket(`${scheme}://${location.host}/ws/?${params}`);
    this.socket = socket;
    this.replayed = 0;
    socket.onopen = () => {
      this.retryMs = RETRY_MIN_MS;
      this._status("connected", { resumed: resuming });
    };
    socket.onmessage = (event) => {
      let frame;
      try { frame = JSON.parse(event.data); } catch { return; }
      if (typeof frame.event_id === "number") {
        if (this.lastEventId !== null && frame.event_id <= this.lastEventId) return;
        this.lastEventId = frame.event_id;
      }
      if (frame.type === "resync_required") {
        this.lastEventId = null;
        this.dispatchEvent(new CustomEvent("resync"));
        return;
      }
      this.dispatchEvent(new CustomEvent("frame", { detail: frame }));
    };
    socket.onclose = (event) => {
      this.socket = null;
      if (this.stopped) return;
      if (event.code === 4401) {
        this.dispatchEvent(new CustomEvent("unauthorized"));
        return;
      }
      if (!navigator.onLine) { this._status("offline"); return; }
      this._status("reconnecting");
      this.timer = setTimeout(() => this._connect(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
    };
  }
}
