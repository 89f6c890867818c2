/** Display helpers: quota as One API shows it, times, numbers. */
import type { Status } from "@/api/types";

export const DEFAULT_QUOTA_PER_UNIT = 500000;

export function quotaPerUnit(status: Status | null): number {
  const value = Number(status?.quota_per_unit ?? DEFAULT_QUOTA_PER_UNIT);
  return value > 0 ? value : DEFAULT_QUOTA_PER_UNIT;
}

/** `$1.234567` when DisplayInCurrencyEnabled (One API's default), else the raw quota. */
export function formatQuota(quota: number, status: Status | null, digits = 2): string {
  if (status && !status.display_in_currency) return formatNumber(quota);
  const amount = quota / quotaPerUnit(status);
  const shown = amount !== 0 && Math.abs(amount) < 10 ** -digits ? amount.toPrecision(2) : amount.toFixed(digits);
  return `$${shown}`;
}

/** The quota an amount entered in the UI stands for (dollars when displaying in currency). */
export function toQuota(amount: number, status: Status | null): number {
  if (status && !status.display_in_currency) return Math.round(amount);
  return Math.round(amount * quotaPerUnit(status));
}

export function fromQuota(quota: number, status: Status | null): number {
  if (status && !status.display_in_currency) return quota;
  return quota / quotaPerUnit(status);
}

export function formatNumber(value: number): string {
  return new Intl.NumberFormat().format(value);
}

function pad(value: number): string {
  return String(value).padStart(2, "0");
}

/** Unix seconds → "2024-05-01 13:45:10" in the browser's time zone. */
export function formatTime(seconds: number): string {
  if (!seconds || seconds <= 0) return "-";
  const d = new Date(seconds * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Unix seconds → the value of an `<input type="datetime-local">`. */
export function toDateTimeLocal(seconds: number): string {
  const d = new Date(seconds * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** An `<input type="datetime-local">` value → Unix seconds (0 when empty or invalid). */
export function fromDateTimeLocal(value: string): number {
  if (!value) return 0;
  const ms = new Date(value).getTime();
  return Number.isNaN(ms) ? 0 : Math.floor(ms / 1000);
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
