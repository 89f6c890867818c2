/**
 * Operation settings (root): quotas, the ratio tables (JSON editors checked before saving; the
 * server's reason is shown when it refuses), general relay switches, channel monitoring, logs.
 */
import { useEffect, useMemo, useState } from "react";
import { api } from "@/api/client";
import { formatJson, JsonEditor, parseJsonObject } from "@/components/JsonEditor";
import { useConfirm } from "@/components/Modal";
import { toast } from "@/components/Toast";
import { Button, Card, Field, Spinner } from "@/components/ui";
import { useI18n, type MessageKey } from "@/i18n";
import { fromDateTimeLocal, nowSeconds, toDateTimeLocal } from "@/lib/format";
import { OptionSection, useOptions, type OptionField, type OptionsState } from "./OptionForm";
import styles from "./settings.module.css";

const QUOTA_FIELDS: OptionField[] = [
  { key: "QuotaForNewUser", kind: "int", label: "settings.QuotaForNewUser", min: 0, quota: true },
  { key: "PreConsumedQuota", kind: "int", label: "settings.PreConsumedQuota", hint: "settings.PreConsumedQuotaHint", min: 0, quota: true },
  { key: "QuotaForInviter", kind: "int", label: "settings.QuotaForInviter", min: 0, quota: true },
  { key: "QuotaForInvitee", kind: "int", label: "settings.QuotaForInvitee", min: 0, quota: true },
  { key: "QuotaRemindThreshold", kind: "int", label: "settings.QuotaRemindThreshold", hint: "settings.QuotaRemindThresholdHint", min: 0, quota: true },
];

const GENERAL_FIELDS: OptionField[] = [
  { key: "DisplayInCurrencyEnabled", kind: "bool", label: "settings.DisplayInCurrencyEnabled" },
  { key: "DisplayTokenStatEnabled", kind: "bool", label: "settings.DisplayTokenStatEnabled" },
  { key: "ApproximateTokenEnabled", kind: "bool", label: "settings.ApproximateTokenEnabled", hint: "settings.ApproximateTokenEnabledHint" },
  { key: "LogConsumeEnabled", kind: "bool", label: "settings.LogConsumeEnabled" },
  { key: "QuotaPerUnit", kind: "float", label: "settings.QuotaPerUnit", hint: "settings.QuotaPerUnitHint", min: 0 },
  { key: "RetryTimes", kind: "int", label: "settings.RetryTimes", hint: "settings.RetryTimesHint", min: 0, max: 100 },
  { key: "LogRetentionDays", kind: "int", label: "settings.LogRetentionDays", hint: "settings.LogRetentionDaysHint", min: 0, max: 36500 },
];

const MONITOR_FIELDS: OptionField[] = [
  { key: "AutomaticDisableChannelEnabled", kind: "bool", label: "settings.AutomaticDisableChannelEnabled" },
  { key: "AutomaticEnableChannelEnabled", kind: "bool", label: "settings.AutomaticEnableChannelEnabled" },
  { key: "ChannelDisableThreshold", kind: "float", label: "settings.ChannelDisableThreshold", hint: "settings.ChannelDisableThresholdHint", min: 0 },
];

const RATIOS: { key: string; label: MessageKey; hint: MessageKey }[] = [
  { key: "ModelRatio", label: "settings.ModelRatio", hint: "settings.ModelRatioHint" },
  { key: "CompletionRatio", label: "settings.CompletionRatio", hint: "settings.CompletionRatioHint" },
  { key: "GroupRatio", label: "settings.GroupRatio", hint: "settings.GroupRatioHint" },
];

/** Same JSON object, whatever the spacing? (Key order counts: it is what root sees.) */
function sameJson(a: string, b: string): boolean {
  const left = parseJsonObject(a).value;
  const right = parseJsonObject(b).value;
  return left !== null && right !== null ? JSON.stringify(left) === JSON.stringify(right) : a.trim() === b.trim();
}

/** The three ratio tables, each a JSON editor; saved together, after checking each parses. */
function RatioSection({ options }: { options: OptionsState }) {
  const { t } = useI18n();
  const { values } = options;
  const [draft, setDraft] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const loaded = useMemo(() => RATIOS.map((ratio) => values?.[ratio.key] ?? "").join("\u0000"), [values]);
  useEffect(() => {
    if (values) setDraft(Object.fromEntries(RATIOS.map((ratio) => [ratio.key, formatJson(values[ratio.key] ?? "")])));
    // `loaded` stands for the three stored tables
  }, [loaded]);

  if (values === null) {
    return (
      <Card title={t("settings.ratios")}>
        <Spinner />
      </Card>
    );
  }

  const save = async () => {
    for (const ratio of RATIOS) {
      const check = parseJsonObject(draft[ratio.key] ?? "");
      if (check.error || check.value === null) {
        const reason = check.error ? t(check.error.key, check.error.vars) : t("json.notObject");
        toast.error(t("settings.ratioInvalid", { name: t(ratio.label), reason }));
        return;
      }
    }
    const changes = RATIOS.filter((ratio) => !sameJson(draft[ratio.key] ?? "", values[ratio.key] ?? "")).map((ratio) => ({
      key: ratio.key,
      value: (draft[ratio.key] ?? "").trim(),
    }));
    setBusy(true);
    try {
      await options.save(changes);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Card title={t("settings.ratios")}>
      <div className="stack" data-testid="section-ratios">
        <p className={`muted small ${styles.note}`}>{t("settings.ratiosNote")}</p>
        {RATIOS.map((ratio) => (
          <Field key={ratio.key} label={t(ratio.label)} hint={t(ratio.hint)}>
            <JsonEditor
              name={ratio.key}
              value={draft[ratio.key] ?? ""}
              onChange={(value) => setDraft((previous) => ({ ...previous, [ratio.key]: value }))}
              rows={ratio.key === "GroupRatio" ? 6 : 12}
              testId={`ratio-${ratio.key}`}
            />
          </Field>
        ))}
        <div className="btn-row">
          <Button variant="primary" busy={busy} onClick={() => void save()} data-testid="save-ratios">
            {t("common.save")}
          </Button>
        </div>
      </div>
    </Card>
  );
}

/** Delete the logs older than a moment (`DELETE /api/log/?target_timestamp=`). */
function LogCleanup() {
  const { t } = useI18n();
  const [when, setWhen] = useState(() => toDateTimeLocal(nowSeconds() - 30 * 86400));
  const [busy, setBusy] = useState(false);
  const [confirm, confirmDialog] = useConfirm();
  const run = async () => {
    const timestamp = fromDateTimeLocal(when);
    if (!timestamp) {
      toast.error(t("settings.logCleanupInvalid"));
      return;
    }
    if (!(await confirm(t("settings.logCleanupConfirm", { time: when.replace("T", " ") })))) return;
    setBusy(true);
    try {
      const count = await api.del<number>("/log/", { query: { target_timestamp: timestamp } });
      toast.success(t("settings.logCleanupDone", { count }));
    } catch {
      // toast shown by the client
    } finally {
      setBusy(false);
    }
  };
  return (
    <Card title={t("settings.logCleanup")}>
      <div className="stack">
        <Field label={t("settings.logCleanupBefore")} hint={t("settings.logCleanupHint")}>
          <div className={styles.row}>
            <input type="datetime-local" name="log-cleanup-before" value={when} onChange={(e) => setWhen(e.target.value)} />
            <Button variant="danger" busy={busy} onClick={() => void run()} data-testid="log-cleanup">
              {t("settings.logCleanupRun")}
            </Button>
          </div>
        </Field>
      </div>
      {confirmDialog}
    </Card>
  );
}

export default function OperationSettingsPage() {
  const { t } = useI18n();
  const options = useOptions();
  return (
    <div className={styles.page}>
      <OptionSection id="quota" title={t("settings.quotaSection")} fields={QUOTA_FIELDS} options={options} />
      <RatioSection options={options} />
      <OptionSection id="general" title={t("settings.generalSection")} fields={GENERAL_FIELDS} options={options} />
      <OptionSection id="monitor" title={t("settings.monitorSection")} fields={MONITOR_FIELDS} options={options} />
      <LogCleanup />
    </div>
  );
}
