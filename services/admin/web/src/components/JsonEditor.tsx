/**
 * A textarea for a JSON object (a channel's model mapping, the ratio tables), checked as typed:
 * the error shows under it, and "Format" re-indents it. Callers check again before saving
 * with `parseJsonObject(text)`; the server has the last word (its message is toasted).
 *
 *   <JsonEditor name="ModelRatio" value={text} onChange={setText} rows={14} />
 */
import { useMemo } from "react";
import { useI18n, type MessageKey, type Vars } from "@/i18n";
import { Button } from "./ui";
import styles from "./JsonEditor.module.css";

export type JsonObject = Record<string, unknown>;

export interface JsonCheck {
  /** the parsed object; null for empty text or an error */
  value: JsonObject | null;
  /** why the text is refused (an i18n key and its variables), or null */
  error: { key: MessageKey; vars?: Vars } | null;
}

/** Empty text is no object and no error: the caller decides whether empty is allowed. */
export function parseJsonObject(text: string): JsonCheck {
  if (!text.trim()) return { value: null, error: null };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return { value: null, error: { key: "json.invalid", vars: { reason } } };
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    return { value: null, error: { key: "json.notObject" } };
  }
  return { value: parsed as JsonObject, error: null };
}

/** `text` re-indented (2 spaces); unchanged when it is not valid JSON. */
export function formatJson(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

export function JsonEditor({
  value,
  onChange,
  name,
  placeholder,
  rows = 8,
  testId,
}: {
  value: string;
  onChange: (value: string) => void;
  name?: string;
  placeholder?: string;
  rows?: number;
  testId?: string;
}) {
  const { t } = useI18n();
  const check = useMemo(() => parseJsonObject(value), [value]);
  return (
    <div className={styles.editor} data-testid={testId}>
      <textarea
        name={name}
        rows={rows}
        spellCheck={false}
        placeholder={placeholder}
        value={value}
        onChange={(event) => onChange(event.target.value)}
        aria-invalid={check.error ? true : undefined}
      />
      <div className={styles.foot}>
        <span className={check.error ? styles.error : styles.ok} role={check.error ? "alert" : undefined} data-testid={testId ? `${testId}-error` : undefined}>
          {check.error ? t(check.error.key, check.error.vars) : value.trim() ? t("json.valid") : ""}
        </span>
        <Button small onClick={() => onChange(formatJson(value))} disabled={!check.value}>
          {t("json.format")}
        </Button>
      </div>
    </div>
  );
}
