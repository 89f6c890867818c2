/** Top-up: the balance, redeeming a code, and the operator's TopUpLink (where codes are sold). */
import { useState, type FormEvent } from "react";
import { api } from "@/api/client";
import { useAuth } from "@/auth";
import { toast } from "@/components/Toast";
import { Button, Card, Field, PageHeader } from "@/components/ui";
import { useI18n } from "@/i18n";
import { formatNumber, formatQuota } from "@/lib/format";

export default function TopUpPage() {
  const { t } = useI18n();
  const { user, status, refreshUser } = useAuth();
  const [code, setCode] = useState("");
  const [busy, setBusy] = useState(false);

  const redeem = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    try {
      const added = await api.post<number>("/user/topup", { key: code.trim() });
      toast.success(t("topup.done", { amount: formatQuota(added, status) }));
      setCode("");
      await refreshUser();
    } catch {
      // toast shown by the client
    } finally {
      setBusy(false);
    }
  };

  return (
    <>
      <PageHeader title={t("nav.topup")} />
      <div className="grid-2">
        <Card title={t("topup.balance")}>
          <div className="stack">
            <div>
              <div className="muted small">{t("topup.remaining")}</div>
              <div style={{ fontSize: "1.6rem", fontWeight: 700 }} data-testid="balance">
                {user ? formatQuota(user.quota, status) : "-"}
              </div>
            </div>
            <div className="grid-2 small">
              <div>
                <div className="muted">{t("topup.used")}</div>
                <div>{user ? formatQuota(user.used_quota, status) : "-"}</div>
              </div>
              <div>
                <div className="muted">{t("topup.requests")}</div>
                <div>{user ? formatNumber(user.request_count) : "-"}</div>
              </div>
            </div>
          </div>
        </Card>
        <Card title={t("topup.redeem")}>
          <form className="stack" onSubmit={redeem}>
            <Field label={t("topup.code")}>
              <input name="code" required value={code} onChange={(e) => setCode(e.target.value)} autoComplete="off" />
            </Field>
            <div className="btn-row">
              <Button type="submit" variant="primary" busy={busy}>
                {t("topup.redeemButton")}
              </Button>
              {status?.top_up_link ? (
                <a className="btn" href={status.top_up_link} target="_blank" rel="noopener noreferrer">
                  {t("topup.buy")}
                </a>
              ) : null}
            </div>
            {status?.top_up_link ? null : <p className="muted small">{t("topup.noLink")}</p>}
          </form>
        </Card>
      </div>
    </>
  );
}
