// The card's visual editor: HA's own form (ha-form) with selectors, so every control is the
// frontend's, themed and keyboard-accessible like the rest of the dashboard editor.

import { LitElement, html, type TemplateResult } from "lit";
import { localize, type StringKey } from "./strings";
import { PERIODS, SECTIONS, type CardConfig, type HomeAssistant } from "./types";

interface SchemaField {
  name: keyof CardConfig;
  selector: Record<string, unknown>;
  required?: boolean;
}

export class SpotifyScrobblerCardEditor extends LitElement {
  static override properties = {
    hass: { attribute: false },
    _config: { state: true },
  };

  hass?: HomeAssistant;
  private _config?: CardConfig;

  setConfig(config: CardConfig): void {
    this._config = config;
  }

  private _t(key: StringKey): string {
    return localize(this.hass?.locale?.language ?? this.hass?.language, key);
  }

  private _schema(): SchemaField[] {
    return [
      { name: "entry_id", required: true, selector: { config_entry: { integration: "spotify_scrobbler" } } },
      {
        name: "period",
        selector: {
          select: {
            mode: "dropdown",
            options: PERIODS.map((value) => ({ value, label: this._t(`period.${value}`) })),
          },
        },
      },
      {
        name: "show",
        selector: {
          select: {
            multiple: true,
            options: SECTIONS.map((value) => ({ value, label: this._t(`show.${value}`) })),
          },
        },
      },
      { name: "limit", selector: { number: { min: 1, max: 20, mode: "box" } } },
      { name: "title", selector: { text: {} } },
    ];
  }

  protected override render(): TemplateResult {
    if (!this.hass || !this._config) return html``;
    return html`<ha-form
      .hass=${this.hass}
      .data=${{ period: "week", limit: 5, show: [...SECTIONS], ...this._config }}
      .schema=${this._schema()}
      .computeLabel=${(field: SchemaField) => this._t(`editor.${field.name}` as StringKey)}
      @value-changed=${this._changed}
    ></ha-form>`;
  }

  private _changed(event: CustomEvent<{ value: CardConfig }>): void {
    event.stopPropagation();
    const config = { ...event.detail.value };
    if (!config.title) delete config.title;
    this._config = config;
    this.dispatchEvent(new CustomEvent("config-changed", { detail: { config }, bubbles: true, composed: true }));
  }
}

customElements.define("spotify-scrobbler-card-editor", SpotifyScrobblerCardEditor);
