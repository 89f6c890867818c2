/**
 * Root's option forms (operation, system, other settings).
 *
 * `useOptions()` reads `GET /api/option/` once; `save(changes)` sends only the values that
 * changed, as one list (`PUT /api/option/` saves a list all or nothing), then refreshes
 * `/api/status` (system name, logo, links and quota display come from it).
 *
 * `<OptionSection>` is one card of fields with its own Save button. Secrets (keys ending in
 * Token or Secret, TurnstileSecretKey) are never sent back by the server: their field starts
 * empty and is sent only when root typed a new value.
 */
import { useCallback, useEffect, useMemo, useState, type FormEvent, type ReactNode } from "react";
import { api } from "@/api/client";
import type { OptionItem, OptionUpdate } from "@/api/types";
import { useAuth } from "@/auth";
import { toast } from "@/components/Toast";
import { Button, Card, Field, Spinner } from "@/components/ui";
import { useI18n, type MessageKey } from "@/i18n";
import { formatQuota } from "@/lib/format";
import styles from "./settings.module.css";

export type OptionValues = Record<string, string>;

export interface OptionsState {
  values: OptionValues | null;
  reload: () => Promise<void>;
  /** Saves the changes together; true when saved (the server's refusal was toasted). */
  save: (changes: OptionUpdate[]) => Promise<boolean>;
}

export function useOptions(): OptionsState {
  const { t } = useI18n();
  const { refreshStatus } = useAuth();
  const [values, setValues] = useState<OptionValues | null>(null);

  const reload = useCallback(async () => {
    try {
      const items = await api.get<OptionItem[]>("/option/");
      setValues(Object.fromEntries(items.map((item) => [item.key, item.value])));
    } catch {
      // toast shown by the client
    }
  }, []);

  useEffect(() => {
    void reload();
  }, [reload]);

  const save = useCallback(
    async (changes: OptionUpdate[]) => {
      if (changes.length === 0) {
        toast.info(t("settings.nothingChanged"));
        return true;
      }
      try {
        await api.put("/option/", changes);
      } catch {
        return false; // the server's reason was toasted
      }
      setValues((previous) => {
        const next = { ...(previous ?? {}) };
        for (const change of changes) if (change.key in next) next[change.key] = String(change.value);
        return next;
      });
      toast.success(t("settings.savedCount", { count: changes.length }));
      void refreshStatus();
      return true;
    },
    [refreshStatus, t],
  );

  return { values, reload, save };
}

interface FieldBase {
  key: string;
  label: MessageKey;
  hint?: MessageKey;
}

export type OptionField =
  | (FieldBase & { kind: "bool" })
  | (FieldBase & { kind: "int" | "float"; min?: number; max?: number; step?: number; quota?: boolean })
  | (FieldBase & { kind: "text" | "url" | "secret"; placeholder?: string })
  | (FieldBase & { kind: "textarea"; rows?: number; placeholder?: string })
  | (FieldBase & { kind: "choice"; choices: { value: string; label: MessageKey }[] });

/** The changes a draft makes to `values`: secrets only when typed. */
export function changesOf(fields: OptionField[], draft: OptionValues, values: OptionValues): OptionUpdate[] {
  const changes: OptionUpdate[] = [];
  for (const field of fields) {
    const value = draft[field.key] ?? "";
    if (field.kind === "secret") {
      if (value !== "") changes.push({ key: field.key, value });
    } else if (value !== (values[field.key] ?? "")) {
      changes.push({ key: field.key, value: field.kind === "int" || field.kind === "float" ? value.trim() : value });
    }
  }
  return changes;
}

function initialDraft(fields: OptionField[], values: OptionValues | null): OptionValues {
  return Object.fromEntries(fields.map((field) => [field.key, field.kind === "secret" ? "" : (values?.[field.key] ?? "")]));
}

function OptionInput({ field, value, onChange }: { field: OptionField; value: string; onChange: (value: string) => void }) {
  const { t } = useI18n();
  switch (field.kind) {
    case "bool":
      return (
        <label className="check">
          <input type="checkbox" name={field.key} checked={value === "true"} onChange={(e) => onChange(e.target.checked ? "true" : "false")} />
          {t(field.label)}
        </label>
      );
    case "int":
    case "float":
      return (
        <input
          type="number"
          name={field.key}
          min={field.min}
          max={field.max}
          step={field.step ?? (field.kind === "int" ? 1 : "any")}
          value={value}
          onChange={(e) => onChange(e.target.value)}
        />
      );
    case "secret":
      return (
        <input
          type="password"
          name={field.key}
          autoComplete="new-password"
          placeholder={t("settings.secretPlaceholder")}
          value={value}
          onChange={(e) => onChange(e.target.value)}
        />
      );
    case "textarea":
      return <textarea name={field.key} rows={field.rows ?? 5} placeholder={field.placeholder} value={value} onChange={(e) => onChange(e.target.value)} />;
    case "choice":
      return (
        <select name={field.key} value={value} onChange={(e) => onChange(e.target.value)}>
          {field.choices.map((choice) => (
            <option key={choice.value} value={choice.value}>
              {t(choice.label)}
            </option>
          ))}
        </select>
      );
    default:
      return (
        <input
          type={field.kind === "url" ? "url" : "text"}
          name={field.key}
          placeholder={field.placeholder}
          value={value}
          onChange={(e) => onChange(e.target.value)}
        />
      );
  }
}

/** One card of options with its Save button (`data-testid="save-{id}"`). */
export function OptionSection({
  id,
  title,
  description,
  fields,
  options,
  children,
  wideFields = [],
}: {
  id: string;
  title: ReactNode;
  description?: ReactNode;
  fields: OptionField[];
  options: OptionsState;
  /** extra content under the fields (a note, a callback URL) */
  children?: ReactNode;
  /** keys of fields that take the whole row */
  wideFields?: string[];
}) {
  const { t } = useI18n();
  const { status } = useAuth();
  const { values } = options;
  const [draft, setDraft] = useState<OptionValues>(() => initialDraft(fields, values));
  const [busy, setBusy] = useState(false);
  // the first load, and a reload, reset the form (unsaved edits of another card stay theirs)
  const snapshot = useMemo(() => JSON.stringify(fields.map((field) => values?.[field.key])), [fields, values]);
  useEffect(() => {
    setDraft(initialDraft(fields, values));
    // `snapshot` stands for these fields' values (the pages pass a new `fields` array each render)
  }, [snapshot]);

  if (values === null) {
    return (
      <Card title={title}>
        <Spinner />
      </Card>
    );
  }

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    try {
      if (await options.save(changesOf(fields, draft, values))) {
        setDraft((previous) => {
          const next = { ...previous };
          for (const field of fields) if (field.kind === "secret") next[field.key] = "";
          return next;
        });
      }
    } finally {
      setBusy(false);
    }
  };

  const bools = fields.filter((field) => field.kind === "bool");
  const others = fields.filter((field) => field.kind !== "bool");
  const quotaHint = (field: OptionField, value: string): string | undefined => {
    if (field.kind !== "int" || !field.quota || !(status?.display_in_currency ?? true)) return undefined;
    const quota = Number(value);
    return Number.isFinite(quota) && value.trim() ? t("settings.quotaEquals", { shown: formatQuota(quota, status, 6) }) : undefined;
  };

  return (
    <Card title={title}>
      <form className="stack" onSubmit={submit} data-testid={`section-${id}`} autoComplete="off">
        {description ? <p className={`muted small ${styles.note}`}>{description}</p> : null}
        {bools.length ? (
          <div className={styles.switches}>
            {bools.map((field) => (
              <div key={field.key}>
                <OptionInput field={field} value={draft[field.key] ?? ""} onChange={(value) => setDraft({ ...draft, [field.key]: value })} />
                {field.hint ? <div className="field-hint">{t(field.hint)}</div> : null}
              </div>
            ))}
          </div>
        ) : null}
        {others.length ? (
          <div className="grid-2">
            {others.map((field) => {
              const hint = quotaHint(field, draft[field.key] ?? "") ?? (field.hint ? t(field.hint) : undefined);
              const wide = wideFields.includes(field.key) || field.kind === "textarea";
              return (
                <Field key={field.key} label={t(field.label)} hint={hint} className={wide ? styles.wide : ""}>
                  <OptionInput field={field} value={draft[field.key] ?? ""} onChange={(value) => setDraft({ ...draft, [field.key]: value })} />
                </Field>
              );
            })}
          </div>
        ) : null}
        {children}
        <div className="btn-row">
          <Button type="submit" variant="primary" busy={busy} data-testid={`save-${id}`}>
            {t("common.save")}
          </Button>
        </div>
      </form>
    </Card>
  );
}
