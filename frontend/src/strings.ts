// Every text the card and its editor show, in one place for translation. A language missing
// a key falls back to English.

const en = {
  "period.today": "Today",
  "period.week": "This week",
  "period.month": "This month",
  "period.year": "This year",
  "period.all_time": "All time",
  "section.tracks": "Top tracks",
  "section.artists": "Top artists",
  "section.albums": "Top albums",
  "section.chart": "Listening",
  "section.recent": "Recently played",
  "unit.plays": "{count} plays",
  "unit.play": "1 play",
  "unit.minutes": "{count} min",
  "chart.plays_in": "{count} plays, {label}",
  "empty.period": "No plays in this period yet.",
  "empty.recent": "Nothing played yet.",
  "empty.chart": "No listening recorded in this period yet.",
  "error.load": "Could not load the statistics: {message}",
  "error.no_account": "Choose an account in the card's settings.",
  "error.account_gone": "This account is no longer set up in Spotify Scrobbler.",
  "action.retry": "Retry",
  "loading": "Loading…",
  "status.rate_limited": "Spotify rate-limits the account until {time}.",
  "status.rate_limited_unknown": "Spotify rate-limits the account.",
  "status.mongodb_unavailable": "MongoDB is unavailable.",
  "status.spotify_unavailable": "Spotify is unavailable.",
  "status.premium_required": "Spotify needs the app owner to have Premium.",
  "status.pending": "{count} plays waiting to be stored.",
  "status.pending_one": "1 play waiting to be stored.",
  "editor.entry_id": "Account",
  "editor.period": "Period",
  "editor.show": "What to show",
  "editor.limit": "Entries per list",
  "editor.title": "Title (optional)",
  "show.tracks": "Top tracks",
  "show.artists": "Top artists",
  "show.albums": "Top albums",
  "show.chart": "Listening chart",
  "show.recent": "Recent plays",
  "card.name": "Spotify Scrobbler statistics",
  "card.description": "Top tracks, artists and albums, listening per day and recent plays.",
} as const;

export type StringKey = keyof typeof en;

const de: Partial<Record<StringKey, string>> = {
  "period.today": "Heute",
  "period.week": "Diese Woche",
  "period.month": "Dieser Monat",
  "period.year": "Dieses Jahr",
  "period.all_time": "Gesamt",
  "section.tracks": "Top-Titel",
  "section.artists": "Top-Künstler",
  "section.albums": "Top-Alben",
  "section.chart": "Hören",
  "section.recent": "Zuletzt gespielt",
  "unit.plays": "{count} Wiedergaben",
  "unit.play": "1 Wiedergabe",
  "empty.period": "In diesem Zeitraum noch nichts gespielt.",
  "action.retry": "Erneut versuchen",
  "loading": "Wird geladen…",
};

const languages: Record<string, Partial<Record<StringKey, string>>> = { en, de };

/** The text for ``key`` in ``language`` (e.g. "de" or "de-AT"), placeholders filled. */
export function localize(
  language: string | undefined,
  key: StringKey,
  values: Record<string, string | number> = {},
): string {
  const base = (language ?? "en").split("-")[0];
  const text = languages[base]?.[key] ?? en[key];
  return text.replace(/\{(\w+)\}/g, (_, name: string) => String(values[name] ?? ""));
}
