/**
 * Pick several strings from a list (models, groups), with a filter; values not in `options`
 * (typed before, or no longer offered) stay selected and are shown too. Empty means "all" for
 * token models, which the caller says with `emptyText`.
 */
import { useMemo, useState } from "react";
import { useI18n } from "@/i18n";
import { Button } from "./ui";
import styles from "./MultiSelect.module.css";

export function MultiSelect({
  options,
  value,
  onChange,
  emptyText,
  testId,
}: {
  options: string[];
  value: string[];
  onChange: (value: string[]) => void;
  emptyText?: string;
  testId?: string;
}) {
  const { t } = useI18n();
  const [filter, setFilter] = useState("");
  const all = useMemo(() => Array.from(new Set([...value, ...options])).sort(), [options, value]);
  const shown = all.filter((option) => option.toLowerCase().includes(filter.trim().toLowerCase()));
  const selected = new Set(value);
  const toggle = (option: string) =>
    onChange(selected.has(option) ? value.filter((v) => v !== option) : [...value, option]);
  return (
    <div className={styles.box} data-testid={testId}>
      <div className={styles.tools}>
        <input
          type="search"
          placeholder={t("common.filter")}
          value={filter}
          onChange={(e) => setFilter(e.target.value)}
          aria-label={t("common.filter")}
        />
        <Button small onClick={() => onChange(Array.from(new Set([...value, ...shown])))}>
          {t("common.selectAll")}
        </Button>
        <Button small onClick={() => onChange([])}>
          {t("common.clear")}
        </Button>
      </div>
      <div className={styles.summary}>
        {value.length ? t("common.selectedCount", { count: value.length }) : (emptyText ?? t("common.noneSelected"))}
      </div>
      <div className={styles.list}>
        {shown.map((option) => (
          <label key={option} className={styles.option}>
            <input type="checkbox" checked={selected.has(option)} onChange={() => toggle(option)} />
            <span>{option}</span>
          </label>
        ))}
      </div>
    </div>
  );
}
