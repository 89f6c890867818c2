/**
 * Create a batch of redemption codes (name, quota each, count 1..100), then show the new keys
 * with "copy all"; or edit one code's name and quota.
 */
import { useState, type FormEvent } from "react";
import { api } from "@/api/client";
import type { Redemption } from "@/api/types";
import { useAuth } from "@/auth";
import { Modal } from "@/components/Modal";
import { toast } from "@/components/Toast";
import { Button, CopyButton, Field } from "@/components/ui";
import { useI18n } from "@/i18n";
import { formatQuota, fromQuota, toQuota } from "@/lib/format";

const MAX_COUNT = 100;
const DEFAULT_QUOTA = 500000; // $1

export default function RedemptionEditor({
  redemption,
  onClose,
  onSaved,
}: {
  redemption: Redemption | null;
  onClose: () => void;
  onSaved: () => void;
}) {
  const { t } = useI18n();
  const { status } = useAuth();
  const editing = redemption !== null;
  const [name, setName] = useState(redemption?.name ?? "");
  const [amount, setAmount] = useState(String(fromQuota(redemption?.quota ?? DEFAULT_QUOTA, status)));
  const [count, setCount] = useState("1");
  const [busy, setBusy] = useState(false);
  const [keys, setKeys] = useState<string[] | null>(null);
  const currency = status?.display_in_currency ?? true;
  const quota = toQuota(Number(amount), status);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!name.trim() || name.trim().length > 20) {
      toast.error(t("redemptions.nameInvalid"));
      return;
    }
    if (!Number.isFinite(quota) || quota <= 0) {
      toast.error(t("redemptions.quotaInvalid"));
      return;
    }
    const howMany = Number(count);
    if (!editing && (!Number.isInteger(howMany) || howMany < 1 || howMany > MAX_COUNT)) {
      toast.error(t("redemptions.countInvalid", { max: MAX_COUNT }));
      return;
    }
    setBusy(true);
    try {
      if (redemption) {
        await api.put("/redemption/", { id: redemption.id, name: name.trim(), quota });
        toast.success(t("common.saved"));
        onSaved();
      } else {
        const created = await api.post<string[]>("/redemption/", { name: name.trim(), quota, count: howMany });
        toast.success(t("redemptions.createdCount", { count: created.length }));
        setKeys(created);
      }
    } catch {
      // toast shown by the client
    } finally {
      setBusy(false);
    }
  };

  if (keys !== null) {
    return (
      <Modal
        open
        wide
        title={t("redemptions.createdTitle", { count: keys.length })}
        onClose={onSaved}
        footer={
          <>
            <CopyButton text={keys.join("\n")} label={t("redemptions.copyAll")} small={false} testId="redemption-copy-all" />
            <Button variant="primary" onClick={onSaved} data-testid="redemption-done">
              {t("common.close")}
            </Button>
          </>
        }
      >
        <div className="stack">
          <p className="muted">{t("redemptions.createdHint", { quota: formatQuota(quota, status) })}</p>
          <textarea readOnly className="mono" rows={Math.min(12, keys.length + 1)} value={keys.join("\n")} data-testid="redemption-keys" onFocus={(e) => e.currentTarget.select()} />
        </div>
      </Modal>
    );
  }

  return (
    <Modal
      open
      title={editing ? t("redemptions.edit") : t("redemptions.add")}
      onClose={onClose}
      footer={
        <>
          <Button onClick={onClose}>{t("common.cancel")}</Button>
          <Button variant="primary" type="submit" form="redemption-form" busy={busy} data-testid="redemption-save">
            {editing ? t("common.save") : t("redemptions.create")}
          </Button>
        </>
      }
    >
      <form id="redemption-form" className="stack" onSubmit={submit}>
        <Field label={t("redemptions.name")}>
          <input name="name" maxLength={20} required value={name} onChange={(e) => setName(e.target.value)} />
        </Field>
        <Field
          label={currency ? t("redemptions.quotaUsd") : t("redemptions.quota")}
          hint={Number.isFinite(quota) && quota > 0 ? t("redemptions.quotaHint", { quota, shown: formatQuota(quota, status) }) : undefined}
        >
          <input name="quota" type="number" min={0} step="any" required value={amount} onChange={(e) => setAmount(e.target.value)} />
        </Field>
        {editing ? null : (
          <Field label={t("redemptions.count")} hint={t("redemptions.countHint", { max: MAX_COUNT })}>
            <input name="count" type="number" step={1} required value={count} onChange={(e) => setCount(e.target.value)} />
          </Field>
        )}
      </form>
    </Modal>
  );
}
