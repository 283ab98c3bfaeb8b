// Instants are UTC on the wire; people read them in their profile's time zone.

export function formatter(timeZone) {
  const opts = { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", timeZone };
  try { return new Intl.DateTimeFormat(undefined, opts); } catch { return new Intl.DateTimeFormat(undefined, { ...opts, timeZone: "UTC" }); }
}

export function formatRange(fmt, start, end) {
  const s = new Date(start), e = new Date(end);
  const endText = new Intl.DateTimeFormat(undefined, {
    hour: "2-digit", minute: "2-digit", timeZone: fmt.resolvedOptions().timeZone,
  }).format(e);
  return `${fmt.format(s)} – ${endText}`;
}

// A datetime-local value (wall clock, no zone) read as UTC; the API reads a bare time as UTC.
export function isoUtc(date) {
  return new Date(date).toISOString().replace(/\.\d{3}Z$/, "Z");
}

export const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

// Milliseconds to add to a UTC instant to read it as wall-clock time in `timeZone`.
function zoneOffset(timeZone, instant) {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  }).formatToParts(instant);
  const get = (type) => Number(parts.find((p) => p.type === type).value);
  return Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute"), get("second")) - instant.getTime();
}

// "2025-03-20T10:00" (a datetime-local value) as wall-clock time in `timeZone` -> ISO UTC.
export function wallToUtc(value, timeZone) {
  const [date, time] = value.split("T");
  const [y, m, d] = date.split("-").map(Number);
  const [hh, mm] = time.split(":").map(Number);
  const wall = Date.UTC(y, m - 1, d, hh, mm);
  let utc = wall - zoneOffset(timeZone, new Date(wall));
  utc = wall - zoneOffset(timeZone, new Date(utc)); // again, across a DST change
  return isoUtc(utc);
}
