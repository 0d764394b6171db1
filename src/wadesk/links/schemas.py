"""The links API's shapes (pydantic), apart from the tables."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
TIME_RE = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d$|^24:00$")
COLOR = r"^#[0-9a-fA-F]{6}$"
DEFAULT_CTA = "Chat on WhatsApp"


class WeeklyHours(BaseModel):
    """When the team answers: a time zone and, per weekday, ranges like ["09:00", "18:00"].

    A range that crosses midnight is written as two ranges (e.g. fri 20:00-24:00 and sat
    00:00-02:00). A day that is not listed is closed.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "time_zone": "America/Sao_Paulo",
                    "days": {
                        "mon": [["09:00", "12:00"], ["13:00", "18:00"]],
                        "sat": [["09:00", "13:00"]],
                    },
                }
            ]
        },
    )
    time_zone: str = Field(max_length=64)
    days: dict[Weekday, list[tuple[str, str]]] = Field(default_factory=dict)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not an IANA time zone like 'Asia/Kolkata'") from exc
        return value

    @field_validator("days")
    @classmethod
    def _ranges(
        cls, value: dict[Weekday, list[tuple[str, str]]]
    ) -> dict[Weekday, list[tuple[str, str]]]:
        for day, ranges in value.items():
            if len(ranges) > 6:
                raise ValueError(f"{day}: at most 6 ranges")
            previous_end = "00:00"
            for start, end in sorted(ranges):
                if not TIME_RE.match(start) or not TIME_RE.match(end):
                    raise ValueError(f"{day}: times are HH:MM, 00:00 to 24:00")
                if start >= end:
                    raise ValueError(f"{day}: {start}-{end} ends before it starts")
                if start < previous_end:
                    raise ValueError(f"{day}: ranges overlap")
                previous_end = end
        return {day: sorted(ranges) for day, ranges in value.items()}


class WidgetSettings(BaseModel):
    """The floating website button of a link (each can be overridden per page with data-*
    attributes on the script tag)."""

    model_config = ConfigDict(extra="forbid")
    text: str | None = Field(
        default=None, max_length=60, description="The button's label (default: the CTA)"
    )
    color: str = Field(default="#25D366", pattern=COLOR)
    text_color: str = Field(default="#FFFFFF", pattern=COLOR)
    position: Literal["bottom-right", "bottom-left"] = "bottom-right"
    offset: int = Field(default=20, ge=0, le=200, description="Pixels from the page's edges")
    devices: Literal["all", "mobile", "desktop"] = "all"
    hide_outside_hours: bool = False
    hours: WeeklyHours | None = None

    @model_validator(mode="after")
    def _hours_given(self) -> WidgetSettings:
        if self.hide_outside_hours and self.hours is None:
            raise ValueError("hide_outside_hours needs hours (a weekly schedule)")
        return self


class LinkFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=200, examples=["Website header"])
    phone: str | None = Field(
        default=None,
        max_length=40,
        description="The business number (international form); default: the inbox's number",
        examples=["+55 11 98765-4321"],
    )
    region: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z]{2}$",
        description="Country of a number written without its country code (e.g. BR)",
    )
    inbox_id: int | None = Field(default=None, ge=1)
    message: str | None = Field(
        default=None,
        max_length=4000,
        description="The prefilled text, in any language, emoji welcome (at most 1,000 characters)",
        examples=["Olá! Quero saber mais sobre a promoção de Natal 🎄"],
    )
    cta_label: str | None = Field(default=None, max_length=60, examples=["Fale conosco"])
    cta_translations: dict[str, str] | None = Field(
        default=None, examples=[{"pt": "Fale conosco", "hi": "हमसे बात करें"}]
    )
    campaign: str | None = Field(default=None, max_length=100, examples=["natal-2025"])
    source: str | None = Field(default=None, max_length=100, examples=["website header"])
    slug: str | None = Field(
        default=None, max_length=64, description="Brand keyword; generated when left out"
    )
    ref_code: str | None = Field(
        default=None, max_length=16, description="Reference code; generated when left out"
    )
    include_ref: bool | None = Field(
        default=None, description="Append '(ref: CODE)' to the text (attribution); default true"
    )
    ref_label: str | None = Field(default=None, max_length=30, examples=["ref", "código"])
    ad_source_id: str | None = Field(
        default=None,
        max_length=64,
        pattern=r"^[0-9A-Za-z_.:-]+$",
        description="A Click-to-WhatsApp ad id: conversations from that ad count for this link",
    )
    expires_at: datetime | None = None
    widget: WidgetSettings | None = None

    @model_validator(mode="after")
    def _aware(self) -> LinkFields:
        if self.expires_at is not None and self.expires_at.tzinfo is None:
            raise ValueError("expires_at needs a time zone (e.g. 2026-01-06T03:00:00Z)")
        return self


class LinkCreate(LinkFields):
    pass


class LinkUpdate(LinkFields):
    is_active: bool | None = None


class BusinessNumberOut(BaseModel):
    e164: str
    international: str
    digits: str
    region: str | None


class WhatsAppPreview(BaseModel):
    """What the customer sees: the chat with this number, the text already typed."""

    business_name: str | None
    number: str
    text: str
    cta_label: str


class LinkPreviewOut(BaseModel):
    phone: BusinessNumberOut
    text: str
    wa_me_url: str
    url_length: int
    preview: WhatsAppPreview


class LinkOut(BaseModel):
    id: int
    name: str
    slug: str
    short_url: str
    wa_me_url: str
    status: Literal["active", "expired", "inactive"]
    phone: BusinessNumberOut
    inbox_id: int | None
    message: str
    text: str = Field(description="The prefilled text, with its reference")
    ref_code: str
    include_ref: bool
    ref_label: str
    cta_label: str
    cta_translations: dict[str, str]
    campaign: str | None
    source: str | None
    ad_source_id: str | None
    widget: WidgetSettings
    expires_at: datetime | None
    is_active: bool
    created_by_user_id: int | None
    created_at: datetime
    updated_at: datetime
    deactivated_at: datetime | None
    preview: WhatsAppPreview


class NumberOption(BaseModel):
    inbox_id: int
    inbox_name: str
    phone: BusinessNumberOut


class DayStats(BaseModel):
    day: date
    clicks: int
    uniques: int
    bot_clicks: int
    conversations: int
    resolved: int


class Totals(BaseModel):
    clicks: int
    uniques: int = Field(description="Unique visitors per day, summed over the days")
    bot_clicks: int = Field(description="Link previews and crawlers (not in clicks)")
    conversations: int = Field(description="Conversations started (attributed to the link)")
    resolved: int
    responded: int = Field(description="Conversations with a first response")
    first_response_avg_s: float | None
    first_response_median_s: float | None
    conversion_rate: float | None = Field(description="conversations / clicks")


class LinkStats(BaseModel):
    link_id: int
    slug: str
    campaign: str | None
    since: date
    until: date
    totals: Totals
    series: list[DayStats]


class CampaignStats(BaseModel):
    campaign: str | None
    links: int
    since: date
    until: date
    totals: Totals
    series: list[DayStats] = []


class SocialTexts(BaseModel):
    generic: str
    x: str = Field(description="Fits in a post on X (280 characters)")
    instagram_bio: str = Field(description="For the bio (150 characters) with the link field")
    facebook: str
    linkedin: str


class Snippets(BaseModel):
    short_url: str
    wa_me_url: str
    website_button: str = Field(description="One <script> tag: a floating button")
    html_button: str = Field(description="An inline button for the header or footer")
    email_signature_html: str = Field(description="Table layout, inline styles, no images")
    email_signature_text: str
    social: SocialTexts
