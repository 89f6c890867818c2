/**
 * Users (admins): list (newest first, or by remaining quota / used quota / requests), search,
 * promote / demote (root only), enable / disable, delete, edit, create. Nobody acts on an equal
 * or higher role: those rows have no actions.
 */
import { useState } from "react";
import { api } from "@/api/client";
import { usePagedList } from "@/lib/usePagedList";
import { ITEMS_PER_PAGE, ROLE, type User } from "@/api/types";
import { useAuth } from "@/auth";
import { useConfirm } from "@/components/Modal";
import { Table } from "@/components/Table";
import { toast } from "@/components/Toast";
import { Badge, Button, Card, PageHeader, Pager, type Tone } from "@/components/ui";
import { useI18n, type MessageKey } from "@/i18n";
import { formatNumber, formatQuota } from "@/lib/format";
import UserEditor from "./UserEditor";

/** users.status */
const USER_STATUS = { ENABLED: 1, DISABLED: 2, DELETED: 3 } as const;

const STATUS: Record<number, { label: MessageKey; tone: Tone }> = {
  [USER_STATUS.ENABLED]: { label: "users.statusEnabled", tone: "green" },
  [USER_STATUS.DISABLED]: { label: "users.statusDisabled", tone: "red" },
  [USER_STATUS.DELETED]: { label: "users.statusDeleted", tone: "grey" },
};

function roleBadge(role: number): { label: MessageKey; tone: Tone } {
  if (role >= ROLE.ROOT) return { label: "role.root", tone: "purple" };
  if (role >= ROLE.ADMIN) return { label: "role.admin", tone: "blue" };
  return { label: "role.common", tone: "grey" };
}

type Order = "" | "quota" | "used_quota" | "request_count";
type Action = "disable" | "enable" | "delete" | "promote" | "demote";

export default function UsersPage() {
  const { t } = useI18n();
  const { status, user: me, isRoot } = useAuth();
  const [order, setOrder] = useState<Order>("");
  const { rows, page, setPage, keyword, setKeyword, searching, search, loading, load } =
    usePagedList<User>("/user/", { order });
  const [editing, setEditing] = useState<User | "new" | null>(null);
  const [confirm, confirmDialog] = useConfirm();


  const manage = async (user: User, action: Action) => {
    if (action === "delete" && !(await confirm(t("users.confirmDelete", { name: user.username })))) return;
    try {
      await api.post("/user/manage", { username: user.username, action });
      const done: Record<Action, MessageKey> = {
        disable: "users.disabledOk",
        enable: "users.enabledOk",
        delete: "users.deletedOk",
        promote: "users.promotedOk",
        demote: "users.demotedOk",
      };
      toast.success(t(done[action], { name: user.username }));
      await load();
    } catch {
      // toast shown by the client
    }
  };

  const myRole = me?.role ?? 0;

  return (
    <>
      <PageHeader
        title={t("nav.users")}
        actions={
          <Button variant="primary" onClick={() => setEditing("new")} data-testid="user-add">
            {t("users.add")}
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
            placeholder={t("users.searchPlaceholder")}
            value={keyword}
            onChange={(e) => setKeyword(e.target.value)}
            aria-label={t("common.search")}
          />
          <select
            value={order}
            onChange={(e) => {
              setPage(0);
              setOrder(e.target.value as Order);
            }}
            aria-label={t("users.order")}
            disabled={Boolean(searching)}
            data-testid="user-order"
          >
            <option value="">{t("users.orderNewest")}</option>
            <option value="quota">{t("users.orderQuota")}</option>
            <option value="used_quota">{t("users.orderUsed")}</option>
            <option value="request_count">{t("users.orderRequests")}</option>
          </select>
          <div className="btn-row">
            <Button type="submit">{t("common.search")}</Button>
            <Button onClick={() => void load()}>{t("common.refresh")}</Button>
          </div>
        </form>
      </Card>
      <Card>
        <Table
          testId="users-table"
          rows={rows}
          rowKey={(user) => user.id}
          loading={loading}
          columns={[
            { key: "id", label: "ID", render: (user) => user.id },
            {
              key: "name",
              label: t("auth.username"),
              render: (user) => (
                <span>
                  <strong>{user.username}</strong>
                  {user.display_name && user.display_name !== user.username ? <span className="muted small"> ({user.display_name})</span> : null}
                  {user.email ? (
                    <>
                      <br />
                      <span className="muted small break">{user.email}</span>
                    </>
                  ) : null}
                </span>
              ),
            },
            { key: "group", label: t("users.group"), render: (user) => <Badge tone="blue">{user.group || "default"}</Badge> },
            { key: "quota", label: t("users.remaining"), className: "nowrap", render: (user) => formatQuota(user.quota, status) },
            { key: "used", label: t("users.used"), className: "nowrap", render: (user) => formatQuota(user.used_quota, status) },
            { key: "requests", label: t("users.requests"), render: (user) => formatNumber(user.request_count) },
            {
              key: "role",
              label: t("users.role"),
              render: (user) => {
                const shown = roleBadge(user.role);
                return (
                  <span data-testid="user-role" data-role={user.role}>
                    <Badge tone={shown.tone}>{t(shown.label)}</Badge>
                  </span>
                );
              },
            },
            {
              key: "status",
              label: t("common.status"),
              render: (user) => {
                const shown = STATUS[user.status] ?? { label: "users.statusUnknown" as MessageKey, tone: "grey" as Tone };
                return (
                  <span data-testid="user-status" data-status={user.status}>
                    <Badge tone={shown.tone}>{t(shown.label)}</Badge>
                  </span>
                );
              },
            },
            {
              key: "actions",
              label: t("common.actions"),
              render: (user) =>
                user.role >= myRole ? (
                  <span className="muted small">-</span>
                ) : (
                  <div className="btn-row" data-user-name={user.username}>
                    {isRoot && user.role < ROLE.ADMIN ? (
                      <Button small onClick={() => void manage(user, "promote")} data-testid="user-promote">
                        {t("users.promote")}
                      </Button>
                    ) : null}
                    {isRoot && user.role >= ROLE.ADMIN ? (
                      <Button small onClick={() => void manage(user, "demote")} data-testid="user-demote">
                        {t("users.demote")}
                      </Button>
                    ) : null}
                    {user.status === USER_STATUS.ENABLED ? (
                      <Button small onClick={() => void manage(user, "disable")} data-testid="user-disable">
                        {t("common.disable")}
                      </Button>
                    ) : (
                      <Button small onClick={() => void manage(user, "enable")} data-testid="user-enable">
                        {t("common.enable")}
                      </Button>
                    )}
                    <Button small onClick={() => setEditing(user)} data-testid="user-edit">
                      {t("common.edit")}
                    </Button>
                    <Button small variant="danger" onClick={() => void manage(user, "delete")} data-testid="user-delete">
                      {t("common.delete")}
                    </Button>
                  </div>
                ),
            },
          ]}
        />
        <Pager page={page} hasNext={rows.length === ITEMS_PER_PAGE} onPage={setPage} />
      </Card>
      {editing !== null ? (
        <UserEditor
          user={editing === "new" ? null : editing}
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
