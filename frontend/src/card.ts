// custom:spotify-scrobbler-card: Your Spotify's home page as a Lovelace card. Top tracks,
// artists and albums with covers (the `top` action), plays per hour/day/week/month (the
// long-term statistics), recent plays, and the scrobbler's status when it is not ok.

import { LitElement, css, html, nothing, type PropertyValues, type TemplateResult } from "lit";
import { barChart } from "./chart";
import { barPeriod, loadAccounts, loadData } from "./data";
import "./editor";
import { localize, type StringKey } from "./strings";
import {
  PERIODS,
  SECTIONS,
  type Account,
  type Bar,
  type CardConfig,
  type CardData,
  type HomeAssistant,
  type Period,
  type RecentPlay,
  type Section,
  type TopEntry,
  type TopKind,
} from "./types";

const DEFAULT_SHOW: Section[] = ["tracks", "artists", "albums", "chart", "recent"];
const DEFAULT_LIMIT = 5;

type Load =
  | { state: "loading" }
  | { state: "error"; message: StringKey; detail?: string }
  | { state: "ready"; data: CardData };

export class SpotifyScrobblerCard extends LitElement {
  static override properties = {
    hass: { attribute: false },
    _config: { state: true },
    _period: { state: true },
    _load: { state: true },
    _account: { state: true },
  };

  hass?: HomeAssistant;
  private _config?: CardConfig;
  private _period: Period = "week";
  private _load: Load = { state: "loading" };
  private _account?: Account;
  private _lastTotal?: string;
  private _request = 0;

  static getConfigElement(): HTMLElement {
    return document.createElement("spotify-scrobbler-card-editor");
  }

  static getStubConfig(): CardConfig {
    return { type: "custom:spotify-scrobbler-card", period: "week", limit: DEFAULT_LIMIT };
  }

  setConfig(config: CardConfig): void {
    if (config.period !== undefined && !PERIODS.includes(config.period)) {
      throw new Error(`Unknown period: ${config.period}`);
    }
    if (config.show?.some((section) => !SECTIONS.includes(section))) {
      throw new Error(`Unknown section in show: ${config.show.join(", ")}`);
    }
    this._config = config;
    this._period = config.period ?? "week";
    this._account = undefined;
  }

  getCardSize(): number {
    return 2 + this._show().length * 3;
  }

  private _show(): Section[] {
    return this._config?.show ?? DEFAULT_SHOW;
  }

  private _t(key: StringKey, values?: Record<string, string | number>): string {
    return localize(this.hass?.locale?.language ?? this.hass?.language, key, values);
  }

  protected override updated(changed: PropertyValues): void {
    if (!this.hass || !this._config) return;
    if (changed.has("_config") || changed.has("_period")) {
      void this._refresh();
      return;
    }
    // New plays counted: the lists and the chart change.
    const total = this._account?.total_entity_id;
    const now = total ? this.hass.states[total]?.state : undefined;
    if (changed.has("hass") && now !== this._lastTotal) {
      this._lastTotal = now;
      if (this._load.state !== "loading") void this._refresh();
    }
  }

  private async _refresh(): Promise<void> {
    const hass = this.hass;
    const config = this._config;
    if (!hass || !config) return;
    const request = ++this._request;
    if (this._load.state !== "ready") this._load = { state: "loading" };
    try {
      const account = await this._findAccount(hass, config);
      if (request !== this._request) return;
      if (!account) {
        this._load = {
          state: "error",
          message: config.entry_id ? "error.account_gone" : "error.no_account",
        };
        return;
      }
      this._account = account;
      this._lastTotal = account.total_entity_id
        ? hass.states[account.total_entity_id]?.state
        : undefined;
      const limit = config.limit ?? DEFAULT_LIMIT;
      const data = await loadData(hass, account, this._period, this._show(), limit);
      if (request === this._request) this._load = { state: "ready", data };
    } catch (err) {
      if (request !== this._request) return;
      const detail = err instanceof Error ? err.message : String((err as { message?: string })?.message ?? err);
      this._load = { state: "error", message: "error.load", detail };
    }
  }

  private async _findAccount(hass: HomeAssistant, config: CardConfig): Promise<Account | undefined> {
    if (this._account && (!config.entry_id || this._account.entry_id === config.entry_id)) {
      return this._account;
    }
    const accounts = await loadAccounts(hass);
    // Without an account chosen (the card picker's preview), the first one.
    return config.entry_id ? accounts.find((a) => a.entry_id === config.entry_id) : accounts[0];
  }

  protected override render(): TemplateResult {
    const title = this._config?.title ?? this._account?.title ?? this._t("card.name");
    return html`<ha-card>
      <div class="header">
        <h1 class="title">${title}</h1>
        <div class="periods" role="group" aria-label=${this._t("editor.period")}>
          ${PERIODS.map(
            (period) => html`<button
              type="button"
              class="period"
              aria-pressed=${period === this._period ? "true" : "false"}
              @click=${() => (this._period = period)}
            >
              ${this._t(`period.${period}`)}
            </button>`,
          )}
        </div>
      </div>
      ${this._status()}
      <div class="content" aria-busy=${this._load.state === "loading" ? "true" : "false"}>
        ${this._body()}
      </div>
    </ha-card>`;
  }

  private _status(): TemplateResult | typeof nothing {
    const account = this._account;
    if (!account || !this.hass) return nothing;
    const lines: string[] = [];
    const status = account.status_entity_id ? this.hass.states[account.status_entity_id] : undefined;
    if (status && status.state !== "ok" && status.state !== "unavailable" && status.state !== "unknown") {
      const until = status.attributes.retry_at;
      if (status.state === "rate_limited") {
        lines.push(
          typeof until === "string"
            ? this._t("status.rate_limited", { time: this._clock(until) })
            : this._t("status.rate_limited_unknown"),
        );
      } else if (
        status.state === "mongodb_unavailable" ||
        status.state === "spotify_unavailable" ||
        status.state === "premium_required"
      ) {
        lines.push(this._t(`status.${status.state}`));
      }
    }
    const pending = account.pending_entity_id ? Number(this.hass.states[account.pending_entity_id]?.state) : 0;
    if (pending > 0) {
      lines.push(pending === 1 ? this._t("status.pending_one") : this._t("status.pending", { count: pending }));
    }
    if (!lines.length) return nothing;
    return html`<div class="status" role="status">
      <ha-icon icon="mdi:alert-circle-outline"></ha-icon><span>${lines.join(" ")}</span>
    </div>`;
  }

  private _body(): TemplateResult {
    const load = this._load;
    if (load.state === "loading") {
      return html`<div class="placeholder">${this._t("loading")}</div>`;
    }
    if (load.state === "error") {
      return html`<div class="placeholder error">
        <span>${this._t(load.message, { message: load.detail ?? "" })}</span>
        ${load.message === "error.load"
          ? html`<button type="button" class="retry" @click=${() => void this._refresh()}>
              ${this._t("action.retry")}
            </button>`
          : nothing}
      </div>`;
    }
    const sections = this._show();
    const data = load.data;
    const noTop = (["tracks", "artists", "albums"] as const).every(
      (kind) => !sections.includes(kind) || !(data.top[kind]?.length ?? 0),
    );
    return html`
      ${sections.some((s) => s === "tracks" || s === "artists" || s === "albums") && noTop
        ? html`<div class="placeholder">${this._t("empty.period")}</div>`
        : html`<div class="tops">
            ${(["tracks", "artists", "albums"] as const)
              .filter((kind) => sections.includes(kind))
              .map((kind) => this._top(kind, data.top[kind] ?? []))}
          </div>`}
      ${sections.includes("chart") ? this._chart(data.bars) : nothing}
      ${sections.includes("recent") ? this._recent(data.recent) : nothing}
    `;
  }

  private _top(kind: TopKind, entries: readonly TopEntry[]): TemplateResult {
    return html`<section class="top">
      <h2>${this._t(`section.${kind}`)}</h2>
      <ol>
        ${entries.map(
          (entry) => html`<li>
            ${this._cover(entry.image_url, kind === "artists")}
            <div class="text">
              ${this._link(entry.name, entry.spotify_url)}
              ${entry.artist_names?.length
                ? html`<span class="secondary">${entry.artist_names.join(", ")}</span>`
                : nothing}
            </div>
            <div class="numbers">
              <span>${entry.plays === 1 ? this._t("unit.play") : this._t("unit.plays", { count: entry.plays })}</span>
              <span class="secondary"
                >${this._t("unit.minutes", { count: Math.round(entry.listening_ms / 60000) })}</span
              >
            </div>
          </li>`,
        )}
      </ol>
    </section>`;
  }

  private _chart(bars: readonly Bar[]): TemplateResult {
    const total = bars.reduce((sum, bar) => sum + bar.plays, 0);
    return html`<section class="listening">
      <h2>${this._t("section.chart")}</h2>
      ${total === 0
        ? html`<div class="placeholder">${this._t("empty.chart")}</div>`
        : barChart(bars, (bar) => this._t("chart.plays_in", { count: bar.plays, label: this._barLabel(bar) }))}
    </section>`;
  }

  private _recent(plays: readonly RecentPlay[]): TemplateResult {
    const now = Date.now();
    return html`<section class="recent">
      <h2>${this._t("section.recent")}</h2>
      ${plays.length === 0
        ? html`<div class="placeholder">${this._t("empty.recent")}</div>`
        : html`<ol>
            ${plays.map(
              (play) => html`<li>
                ${this._cover(play.image_url, false)}
                <div class="text">
                  ${this._link(play.track_name ?? play.track_id, play.spotify_url)}
                  <span class="secondary">${play.artist_names.join(", ")}</span>
                </div>
                <time class="secondary" datetime=${play.played_at} title=${new Date(play.played_at).toLocaleString(this._language())}
                  >${this._relative(Date.parse(play.played_at), now)}</time
                >
              </li>`,
            )}
          </ol>`}
    </section>`;
  }

  private _cover(url: string | null, round: boolean): TemplateResult {
    return url
      ? html`<img class=${round ? "cover round" : "cover"} src=${url} alt="" loading="lazy" />`
      : html`<div class=${round ? "cover round empty" : "cover empty"}></div>`;
  }

  private _link(name: string, url: string | null): TemplateResult {
    return url
      ? html`<a class="name" href=${url} target="_blank" rel="noreferrer">${name}</a>`
      : html`<span class="name">${name}</span>`;
  }

  private _language(): string {
    return this.hass?.locale?.language ?? this.hass?.language ?? "en";
  }

  private _relative(at: number, now: number): string {
    const format = new Intl.RelativeTimeFormat(this._language(), { numeric: "auto" });
    const seconds = Math.round((at - now) / 1000);
    const steps: [Intl.RelativeTimeFormatUnit, number][] = [
      ["second", 60],
      ["minute", 60],
      ["hour", 24],
      ["day", 7],
      ["week", 4.35],
      ["month", 12],
      ["year", Infinity],
    ];
    let value = seconds;
    for (const [unit, size] of steps) {
      if (Math.abs(value) < size) return format.format(Math.round(value), unit);
      value /= size;
    }
    return format.format(Math.round(value), "year");
  }

  private _clock(iso: string): string {
    return new Date(iso).toLocaleTimeString(this._language(), { hour: "2-digit", minute: "2-digit" });
  }

  private _barLabel(bar: Bar): string {
    const at = new Date(bar.start);
    const language = this._language();
    switch (barPeriod(this._period)) {
      case "hour":
        return at.toLocaleTimeString(language, { hour: "2-digit", minute: "2-digit" });
      case "month":
        return at.toLocaleDateString(language, { year: "numeric", month: "short" });
      default:
        return at.toLocaleDateString(language, { month: "short", day: "numeric" });
    }
  }

  static override styles = css`
    ha-card {
      padding: 16px;
      display: flex;
      flex-direction: column;
      gap: 12px;
    }
    .header {
      display: flex;
      flex-wrap: wrap;
      align-items: center;
      justify-content: space-between;
      gap: 8px;
    }
    .title {
      margin: 0;
      font-size: 1.25em;
      font-weight: 500;
      color: var(--primary-text-color);
    }
    .periods {
      display: flex;
      flex-wrap: wrap;
      gap: 4px;
    }
    button {
      font: inherit;
      cursor: pointer;
      border-radius: 16px;
      padding: 4px 10px;
      border: 1px solid var(--divider-color);
      background: transparent;
      color: var(--primary-text-color);
    }
    button[aria-pressed="true"] {
      background: var(--primary-color);
      border-color: var(--primary-color);
      color: var(--text-primary-color, #fff);
    }
    button:focus-visible {
      outline: 2px solid var(--primary-color);
      outline-offset: 2px;
    }
    .status {
      display: flex;
      align-items: center;
      gap: 8px;
      padding: 8px 12px;
      border-radius: 8px;
      color: var(--primary-text-color);
      background: rgba(var(--rgb-warning-color, 255, 166, 0), 0.15);
    }
    .status ha-icon {
      color: var(--warning-color);
      flex: none;
    }
    .content {
      display: flex;
      flex-direction: column;
      gap: 16px;
    }
    .tops {
      display: grid;
      grid-template-columns: repeat(auto-fit, minmax(220px, 1fr));
      gap: 16px;
    }
    h2 {
      margin: 0 0 8px;
      font-size: 1em;
      font-weight: 500;
      color: var(--secondary-text-color);
    }
    ol {
      list-style: none;
      margin: 0;
      padding: 0;
      display: flex;
      flex-direction: column;
      gap: 8px;
    }
    li {
      display: flex;
      align-items: center;
      gap: 10px;
      min-width: 0;
    }
    .cover {
      width: 40px;
      height: 40px;
      flex: none;
      border-radius: 4px;
      object-fit: cover;
      background: var(--secondary-background-color);
    }
    .cover.round {
      border-radius: 50%;
    }
    .text {
      display: flex;
      flex-direction: column;
      min-width: 0;
      flex: 1;
    }
    .name,
    .secondary {
      overflow: hidden;
      text-overflow: ellipsis;
      white-space: nowrap;
    }
    .name {
      color: var(--primary-text-color);
      text-decoration: none;
    }
    a.name:hover,
    a.name:focus-visible {
      text-decoration: underline;
    }
    .secondary {
      color: var(--secondary-text-color);
      font-size: 0.9em;
    }
    .numbers {
      display: flex;
      flex-direction: column;
      align-items: flex-end;
      flex: none;
      font-variant-numeric: tabular-nums;
    }
    .chart {
      width: 100%;
      height: 80px;
      display: block;
    }
    .chart rect {
      fill: var(--primary-color);
    }
    .placeholder {
      color: var(--secondary-text-color);
      padding: 8px 0;
      display: flex;
      align-items: center;
      gap: 12px;
      flex-wrap: wrap;
    }
    .error {
      color: var(--error-color);
    }
  `;
}

customElements.define("spotify-scrobbler-card", SpotifyScrobblerCard);

interface CustomCardEntry {
  type: string;
  name: string;
  description: string;
  preview: boolean;
  documentationURL: string;
}
const registry = window as unknown as { customCards?: CustomCardEntry[] };
registry.customCards = registry.customCards ?? [];
registry.customCards.push({
  type: "spotify-scrobbler-card",
  name: localize(navigator.language, "card.name"),
  description: localize(navigator.language, "card.description"),
  preview: true,
  documentationURL: "https://github.com/spotify-scrobbler/spotify_scrobbler#statistics-card",
});
