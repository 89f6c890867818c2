/**
 * Redemption codes (admins): list, search by id or name, batch create (the new keys are shown
 * with "copy all"), copy a key, enable / disable, edit, delete.
 */
import { useState } from "react";
import { api } from "@/api/client";
import { usePagedList } from "@/lib/usePagedList";
import { ITEMS_PER_PAGE, type Redemption } from "@/api/types";
import { useAuth } from "@/auth";
import { useConfirm } from "@/components/Modal";
import { Table } from "@/components/Table";
import { toast } from "@/components/Toast";
import { Badge, Button, Card, CopyButton, PageHeader, Pager, type Tone } from "@/components/ui";
import { useI18n, type MessageKey } from "@/i18n";
import { formatQuota, formatTime } from "@/lib/format";
import RedemptionEditor from "./RedemptionEditor";

/** redemptions.status */
const REDEMPTION_STATUS = { ENABLED: 1, DISABLED: 2, USED: 3 } as const;

const STATUS: Record<number, { label: MessageKey; tone: Tone }> = {
  [REDEMPTION_STATUS.ENABLED]: { label: "redemptions.statusEnabled", tone: "green" },
  [REDEMPTION_STATUS.DISABLED]: { label: "redemptions.statusDisabled", tone: "red" },
  [REDEMPTION_STATUS.USED]: { label: "redemptions.statusUsed", tone: "grey" },
};

export default function RedemptionsPage() {
  const { t } = useI18n();
  const { status } = useAuth();
  const [editing, setEditing] = useState<Redemption | "new" | null>(null);
  const { rows, page, setPage, keyword, setKeyword, searching, search, loading, load } =
    usePagedList<Redemption>("/redemption/");
  const [confirm, confirmDialog] = useConfirm();


  const setStatus = async (redemption: Redemption, next: number) => {
    try {
      await api.put("/redemption/", { id: redemption.id, status: next }, { query: { status_only: true } });
      toast.success(t("common.saved"));
      await load();
    } catch {
      // toast shown by the client
    }
  };

  const remove = async (redemption: Redemption) => {
    if (!(await confirm(t("redemptions.confirmDelete", { name: redemption.name })))) return;
    try {
      await api.del(`/redemption/${redemption.id}`);
      toast.success(t("redemptions.deleted", { name: redemption.name }));
      await load();
    } catch {
      // toast shown by the client
    }
  };

  return (
    <>
      <PageHeader
        title={t("nav.redemptions")}
        actions={
          <Button variant="primary" onClick={() => setEditing("new")} data-testid="redemption-add">
            {t("redemptions.add")}
          </Button>
        }
      />
      <Card>
        <form
          className="filters"
          onSubmit={(event) => {
            event.preventDefault();
            search();
          }}
        >
          <input
            type="search"
            placeholder={t("redemptions.searchPlaceholder")}
            value={keyword}
            onChange={(e) => setKeyword(e.target.value)}
            aria-label={t("common.search")}
          />
          <div className="btn-row">
            <Button type="submit">{t("common.search")}</Button>
            <Button onClick={() => void load()}>{t("common.refresh")}</Button>
          </div>
        </form>
      </Card>
      <Card>
        <Table
          testId="redemptions-table"
          rows={rows}
          rowKey={(redemption) => redemption.id}
          loading={loading}
          columns={[
            { key: "id", label: "ID", render: (redemption) => redemption.id },
            { key: "name", label: t("redemptions.name"), render: (redemption) => <strong>{redemption.name || "-"}</strong> },
            {
              key: "status",
              label: t("common.status"),
              render: (redemption) => {
                const shown = STATUS[redemption.status] ?? { label: "redemptions.statusUnknown" as MessageKey, tone: "grey" as Tone };
                return (
                  <span data-testid="redemption-status" data-status={redemption.status}>
                    <Badge tone={shown.tone}>{t(shown.label)}</Badge>
                  </span>
                );
              },
            },
            { key: "quota", label: t("redemptions.quota"), className: "nowrap", render: (redemption) => formatQuota(redemption.quota, status) },
            { key: "created", label: t("redemptions.created"), className: "nowrap", render: (redemption) => formatTime(redemption.created_time) },
            {
              key: "redeemed",
              label: t("redemptions.redeemed"),
              className: "nowrap",
              render: (redemption) => (redemption.redeemed_time ? formatTime(redemption.redeemed_time) : t("redemptions.notRedeemed")),
            },
            {
              key: "actions",
              label: t("common.actions"),
              render: (redemption) => (
                <div className="btn-row" data-redemption-name={redemption.name}>
                  <CopyButton text={redemption.key} label={t("redemptions.copyKey")} testId="redemption-copy" />
                  {redemption.status === REDEMPTION_STATUS.ENABLED ? (
                    <Button small onClick={() => void setStatus(redemption, REDEMPTION_STATUS.DISABLED)} data-testid="redemption-disable">
                      {t("common.disable")}
                    </Button>
                  ) : redemption.status === REDEMPTION_STATUS.DISABLED ? (
                    <Button small onClick={() => void setStatus(redemption, REDEMPTION_STATUS.ENABLED)} data-testid="redemption-enable">
                      {t("common.enable")}
                    </Button>
                  ) : null}
                  {redemption.status === REDEMPTION_STATUS.USED ? null : (
                    <Button small onClick={() => setEditing(redemption)} data-testid="redemption-edit">
                      {t("common.edit")}
                    </Button>
                  )}
                  <Button small variant="danger" onClick={() => void remove(redemption)} data-testid="redemption-delete">
                    {t("common.delete")}
                  </Button>
                </div>
              ),
            },
          ]}
        />
        {searching ? null : <Pager page={page} hasNext={rows.length === ITEMS_PER_PAGE} onPage={setPage} />}
      </Card>
      {editing !== null ? (
        <RedemptionEditor
          redemption={editing === "new" ? null : editing}
          onClose={() => setEditing(null)}
          onSaved={() => {
            setEditing(null);
            void load();
          }}
        />
      ) : null}
      {confirmDialog}
    </>
  );
}
