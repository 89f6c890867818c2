/** Create or edit a token: name, expiry, quota or unlimited, models, subnet. */
import { useEffect, useState, type FormEvent } from "react";
import { api } from "@/api/client";
import type { Token, TokenCreate } from "@/api/types";
import { useAuth } from "@/auth";
import { Modal } from "@/components/Modal";
import { MultiSelect } from "@/components/MultiSelect";
import { toast } from "@/components/Toast";
import { Button, Field } from "@/components/ui";
import { useI18n } from "@/i18n";
import { fromDateTimeLocal, fromQuota, nowSeconds, toDateTimeLocal, toQuota } from "@/lib/format";

const DEFAULT_QUOTA = 500000; // One API's default for a new token ($1)

function splitList(value: string): string[] {
  return value.split(",").map((item) => item.trim()).filter(Boolean);
}

export default function TokenEditor({ token, onClose, onSaved }: { token: Token | null; onClose: () => void; onSaved: () => void }) {
  const { t } = useI18n();
  const { status } = useAuth();
  const [name, setName] = useState(token?.name ?? "");
  const [never, setNever] = useState(token ? token.expired_time === -1 : true);
  const [expires, setExpires] = useState(
    token && token.expired_time > 0 ? toDateTimeLocal(token.expired_time) : toDateTimeLocal(nowSeconds() + 30 * 86400),
  );
  const [unlimited, setUnlimited] = useState(token?.unlimited_quota ?? false);
  const [amount, setAmount] = useState(String(fromQuota(token?.remain_quota ?? DEFAULT_QUOTA, status)));
  const [models, setModels] = useState<string[]>(splitList(token?.models ?? ""));
  const [subnet, setSubnet] = useState(token?.subnet ?? "");
  const [available, setAvailable] = useState<string[]>([]);
  const [busy, setBusy] = useState(false);
  const currency = status?.display_in_currency ?? true;

  useEffect(() => {
    void api.get<string[]>("/user/available_models").then(setAvailable, () => undefined);
  }, []);

  const addExpiry = (seconds: number) => {
    setNever(false);
    setExpires(toDateTimeLocal(nowSeconds() + seconds));
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const expiredTime = never ? -1 : fromDateTimeLocal(expires);
    if (!never && expiredTime <= nowSeconds()) {
      toast.error(t("tokens.expiryPast"));
      return;
    }
    const quota = toQuota(Number(amount), status);
    if (!unlimited && (!Number.isFinite(quota) || quota < 0)) {
      toast.error(t("tokens.quotaInvalid"));
      return;
    }
    const body: TokenCreate = {
      name: name.trim(),
      expired_time: expiredTime,
      remain_quota: unlimited ? (token?.remain_quota ?? 0) : quota,
      unlimited_quota: unlimited,
      models: models.join(","),
      subnet: subnet.trim(),
    };
    setBusy(true);
    try {
      if (token) await api.put("/token/", { id: token.id, ...body });
      else await api.post("/token/", body);
      toast.success(token ? t("common.saved") : t("tokens.created_ok"));
      onSaved();
    } catch {
      // toast shown by the client
    } finally {
      setBusy(false);
    }
  };

  return (
    <Modal
      open
      wide
      title={token ? t("tokens.edit") : t("tokens.add")}
      onClose={onClose}
      footer={
        <>
          <Button onClick={onClose}>{t("common.cancel")}</Button>
          <Button variant="primary" type="submit" form="token-form" busy={busy} data-testid="token-save">
            {t("common.save")}
          </Button>
        </>
      }
    >
      <form id="token-form" className="stack" onSubmit={submit}>
        <Field label={t("tokens.name")}>
          <input name="name" maxLength={30} value={name} onChange={(e) => setName(e.target.value)} required />
        </Field>
        <Field label={t("tokens.expires")}>
          <div className="stack">
            <label className="check">
              <input type="checkbox" checked={never} onChange={(e) => setNever(e.target.checked)} name="never-expires" />
              {t("common.never")}
            </label>
            {never ? null : <input type="datetime-local" name="expires" value={expires} onChange={(e) => setExpires(e.target.value)} />}
            <div className="btn-row">
              <Button small onClick={() => addExpiry(3600)}>{t("tokens.plusHour")}</Button>
              <Button small onClick={() => addExpiry(86400)}>{t("tokens.plusDay")}</Button>
              <Button small onClick={() => addExpiry(30 * 86400)}>{t("tokens.plusMonth")}</Button>
            </div>
          </div>
        </Field>
        <Field label={currency ? t("tokens.quotaUsd") : t("tokens.quota")} hint={t("tokens.quotaHint")}>
          <div className="stack">
            <label className="check">
              <input type="checkbox" checked={unlimited} onChange={(e) => setUnlimited(e.target.checked)} name="unlimited" />
              {t("common.unlimited")}
            </label>
            {unlimited ? null : (
              <input type="number" name="quota" min={0} step="any" value={amount} onChange={(e) => setAmount(e.target.value)} />
            )}
          </div>
        </Field>
        <Field label={t("tokens.models")} hint={t("tokens.modelsHint")}>
          <MultiSelect options={available} value={models} onChange={setModels} emptyText={t("tokens.allModels")} testId="token-models" />
        </Field>
        <Field label={t("tokens.subnet")} hint={t("tokens.subnetHint")}>
          <input name="subnet" placeholder="10.0.0.0/8, 192.168.1.7" value={subnet} onChange={(e) => setSubnet(e.target.value)} />
        </Field>
      </form>
    </Modal>
  );
}
