/**
 * Toasts: `toast.error(message)`, `toast.success(message)`, `toast.info(message)` from anywhere
 * (the API client raises an error toast for every `success: false` by itself).
 * `<Toasts />` is rendered once by the app shell.
 */
import { useSyncExternalStore } from "react";
import { useI18n } from "@/i18n";
import styles from "./Toast.module.css";

export type ToastKind = "success" | "error" | "info";

interface ToastItem {
  id: number;
  kind: ToastKind;
  text: string;
}

let items: ToastItem[] = [];
let nextId = 1;
const listeners = new Set<() => void>();

function emit(): void {
  for (const listener of listeners) listener();
}

function dismiss(id: number): void {
  items = items.filter((item) => item.id !== id);
  emit();
}

function push(kind: ToastKind, text: string): void {
  // The same message twice in a row (e.g. several failing calls) is shown once.
  if (items.some((item) => item.kind === kind && item.text === text)) return;
  const id = nextId++;
  items = [...items.slice(-4), { id, kind, text }];
  emit();
  window.setTimeout(() => dismiss(id), kind === "error" ? 6000 : 3500);
}

export const toast = {
  success: (text: string) => push("success", text),
  error: (text: string) => push("error", text),
  info: (text: string) => push("info", text),
};

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function Toasts() {
  const list = useSyncExternalStore(subscribe, () => items);
  const { t } = useI18n();
  return (
    <div className={styles.region} aria-live="polite">
      {list.map((item) => (
        <div
          key={item.id}
          role={item.kind === "error" ? "alert" : "status"}
          className={`${styles.toast} ${styles[item.kind]}`}
          data-testid={`toast-${item.kind}`}
        >
          <span className={styles.text}>{item.text}</span>
          <button className={styles.close} onClick={() => dismiss(item.id)} aria-label={t("common.close")}>
            ×
          </button>
        </div>
      ))}
    </div>
  );
}
