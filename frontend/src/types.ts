// The parts of Home Assistant's frontend objects the card uses, and its own data shapes.

export interface HassEntity {
  entity_id: string;
  state: string;
  attributes: Record<string, unknown>;
}

export interface HomeAssistant {
  states: Record<string, HassEntity>;
  locale?: { language: string };
  language?: string;
  themes?: { darkMode?: boolean };
  callWS<T>(message: Record<string, unknown>): Promise<T>;
}

export const PERIODS = ["today", "week", "month", "year", "all_time"] as const;
export type Period = (typeof PERIODS)[number];

export const SECTIONS = ["tracks", "artists", "albums", "chart", "recent"] as const;
export type Section = (typeof SECTIONS)[number];
export type TopKind = "tracks" | "artists" | "albums";

export interface CardConfig {
  type: string;
  entry_id?: string;
  title?: string;
  period?: Period;
  show?: Section[];
  limit?: number;
}

/** One account as ``spotify_scrobbler/accounts`` describes it. */
export interface Account {
  entry_id: string;
  title: string;
  plays_statistic_id: string;
  status_entity_id: string | null;
  pending_entity_id: string | null;
  total_entity_id: string | null;
}

export interface TopEntry {
  id: string;
  name: string;
  plays: number;
  listening_ms: number;
  image_url: string | null;
  spotify_url: string | null;
  artist_names?: string[];
}

export interface RecentPlay {
  track_id: string;
  track_name: string | null;
  artist_names: string[];
  played_at: string;
  spotify_url: string | null;
  image_url: string | null;
}

export interface Bar {
  start: number; // ms since the epoch
  plays: number;
}

export interface CardData {
  top: Partial<Record<TopKind, TopEntry[]>>;
  recent: RecentPlay[];
  bars: Bar[];
}
