// What the card shows, fetched over Home Assistant's websocket: the integration's `top` and
// `recent_plays` actions, its account list, and the recorder's long-term statistics.

import type {
  Account,
  Bar,
  CardData,
  HomeAssistant,
  Period,
  RecentPlay,
  Section,
  TopEntry,
  TopKind,
} from "./types";

const DOMAIN = "spotify_scrobbler";
const TOP_KINDS: readonly TopKind[] = ["tracks", "artists", "albums"];

export function loadAccounts(hass: HomeAssistant): Promise<Account[]> {
  return hass.callWS<Account[]>({ type: `${DOMAIN}/accounts` });
}

async function callAction<T>(
  hass: HomeAssistant,
  service: string,
  data: Record<string, unknown>,
): Promise<T> {
  const result = await hass.callWS<{ response: T }>({
    type: "call_service",
    domain: DOMAIN,
    service,
    service_data: data,
    return_response: true,
  });
  return result.response;
}

/** Where a period starts (local time, weeks on Monday: as the `top` action counts). */
export function periodStart(period: Period, now: Date): Date | null {
  const day = new Date(now.getFullYear(), now.getMonth(), now.getDate());
  switch (period) {
    case "today":
      return day;
    case "week":
      return new Date(day.getFullYear(), day.getMonth(), day.getDate() - ((day.getDay() + 6) % 7));
    case "month":
      return new Date(day.getFullYear(), day.getMonth(), 1);
    case "year":
      return new Date(day.getFullYear(), 0, 1);
    default:
      return null;
  }
}

/** The recorder's bucket for a period's bars: hours of a day, days, weeks or months. */
export function barPeriod(period: Period): "hour" | "day" | "week" | "month" {
  return period === "today" ? "hour" : period === "year" ? "week" : period === "all_time" ? "month" : "day";
}

async function loadBars(
  hass: HomeAssistant,
  statisticId: string,
  period: Period,
  now: Date,
): Promise<Bar[]> {
  // All time starts at the first row the recorder has (the epoch asks for everything).
  const start = periodStart(period, now) ?? new Date(0);
  const result = await hass.callWS<Record<string, { start: number; change?: number | null }[]>>({
    type: "recorder/statistics_during_period",
    start_time: start.toISOString(),
    statistic_ids: [statisticId],
    period: barPeriod(period),
    types: ["change"],
  });
  return (result[statisticId] ?? []).map((row) => ({
    start: row.start,
    plays: Math.max(0, Math.round(row.change ?? 0)),
  }));
}

export async function loadData(
  hass: HomeAssistant,
  account: Account,
  period: Period,
  show: readonly Section[],
  limit: number,
  now: Date = new Date(),
): Promise<CardData> {
  const kinds = TOP_KINDS.filter((kind) => show.includes(kind));
  const entry = { config_entry_id: account.entry_id };
  const [top, recent, bars] = await Promise.all([
    kinds.length
      ? callAction<Partial<Record<TopKind, TopEntry[]>>>(hass, "top", {
          ...entry,
          period,
          kinds,
          limit,
        })
      : Promise.resolve({}),
    show.includes("recent")
      ? callAction<{ plays: RecentPlay[] }>(hass, "recent_plays", { ...entry, count: limit }).then(
          (answer) => answer.plays,
        )
      : Promise.resolve([]),
    show.includes("chart")
      ? loadBars(hass, account.plays_statistic_id, period, now)
      : Promise.resolve([]),
  ]);
  return { top, recent, bars };
}
