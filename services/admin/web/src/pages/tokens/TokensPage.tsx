/**
 * Tokens: the caller's API keys. List (newest first, or by remaining / used quota), search by
 * name, enable/disable, copy the key (`sk-…`) or a chat client's deep link, edit, delete.
 */
import { useState } from "react";
import { api } from "@/api/client";
import { usePagedList } from "@/lib/usePagedList";
import { ITEMS_PER_PAGE, TOKEN_STATUS, type Token } from "@/api/types";
import { useAuth } from "@/auth";
import { Menu } from "@/components/Menu";
import { useConfirm } from "@/components/Modal";
import { Table } from "@/components/Table";
import { toast } from "@/components/Toast";
import { Badge, Button, Card, PageHeader, Pager, type Tone } from "@/components/ui";
import { useI18n, type MessageKey } from "@/i18n";
import { CHAT_CLIENTS, displayKey, serverAddress } from "@/lib/chatLinks";
import { copyText } from "@/lib/clipboard";
import { formatQuota, formatTime } from "@/lib/format";
import TokenEditor from "./TokenEditor";

const STATUS: Record<number, { label: MessageKey; tone: Tone }> = {
  [TOKEN_STATUS.ENABLED]: { label: "tokens.statusEnabled", tone: "green" },
  [TOKEN_STATUS.DISABLED]: { label: "tokens.statusDisabled", tone: "red" },
  [TOKEN_STATUS.EXPIRED]: { label: "tokens.statusExpired", tone: "yellow" },
  [TOKEN_STATUS.EXHAUSTED]: { label: "tokens.statusExhausted", tone: "grey" },
};

type Order = "" | "remain_quota" | "used_quota";

export default function TokensPage() {
  const { t } = useI18n();
  const { status } = useAuth();
  const [order, setOrder] = useState<Order>("");
  const { rows, page, setPage, keyword, setKeyword, searching, search, loading, load } =
    usePagedList<Token>("/token/", { order });
  const [editing, setEditing] = useState<Token | "new" | null>(null);
  const [confirm, confirmDialog] = useConfirm();


  const copy = async (text: string) => {
    if (await copyText(text)) toast.success(t("common.copied"));
    else window.prompt(t("common.copyManually"), text);
  };

  const setStatus = async (token: Token, next: number) => {
    try {
      await api.put("/token/", { id: token.id, status: next }, { query: { status_only: true } });
      toast.success(t("common.saved"));
      await load();
    } catch {
      // toast shown by the client
    }
  };

  const remove = async (token: Token) => {
    if (!(await confirm(t("tokens.confirmDelete", { name: token.name })))) return;
    try {
      await api.del(`/token/${token.id}`);
      toast.success(t("tokens.deleted", { name: token.name }));
      await load();
    } catch {
      // toast shown by the client
    }
  };

  const server = serverAddress(status);
  const chatLink = status?.chat_link ?? "";

  return (
    <>
      <PageHeader
        title={t("nav.tokens")}
        actions={
          <Button variant="primary" onClick={() => setEditing("new")} data-testid="token-add">
            {t("tokens.add")}
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
            placeholder={t("tokens.searchPlaceholder")}
            value={keyword}
            onChange={(e) => setKeyword(e.target.value)}
            aria-label={t("common.search")}
          />
          <select value={order} onChange={(e) => setOrder(e.target.value as Order)} aria-label={t("tokens.order")} disabled={Boolean(searching)}>
            <option value="">{t("tokens.orderNewest")}</option>
            <option value="remain_quota">{t("tokens.orderRemain")}</option>
            <option value="used_quota">{t("tokens.orderUsed")}</option>
          </select>
          <div className="btn-row">
            <Button type="submit">{t("common.search")}</Button>
            <Button onClick={() => void load()}>{t("common.refresh")}</Button>
          </div>
        </form>
      </Card>
      <Card>
        <Table
          testId="tokens-table"
          rows={rows}
          rowKey={(token) => token.id}
          loading={loading}
          columns={[
            { key: "name", label: t("tokens.name"), render: (token) => <strong>{token.name || "-"}</strong> },
            {
              key: "status",
              label: t("common.status"),
              render: (token) => {
                const shown = STATUS[token.status] ?? { label: "tokens.statusUnknown" as MessageKey, tone: "grey" as Tone };
                return <Badge tone={shown.tone}>{t(shown.label)}</Badge>;
              },
            },
            { key: "used", label: t("tokens.used"), render: (token) => formatQuota(token.used_quota, status) },
            {
              key: "remain",
              label: t("tokens.remain"),
              render: (token) => (token.unlimited_quota ? t("common.unlimited") : formatQuota(token.remain_quota, status)),
            },
            { key: "created", label: t("tokens.created"), className: "nowrap", render: (token) => formatTime(token.created_time) },
            {
              key: "expires",
              label: t("tokens.expires"),
              className: "nowrap",
              render: (token) => (token.expired_time === -1 ? t("common.never") : formatTime(token.expired_time)),
            },
            {
              key: "actions",
              label: t("common.actions"),
              render: (token) => (
                <div className="btn-row" data-token-name={token.name}>
                  <Button small onClick={() => void copy(displayKey(token.key))} data-testid="token-copy" data-copy={displayKey(token.key)}>
                    {t("tokens.copyKey")}
                  </Button>
                  <Menu
                    label={t("tokens.chatLinks")}
                    testId="token-links"
                    items={CHAT_CLIENTS.map((client) => ({
                      label: t("tokens.copyLinkFor", { client: client.name }),
                      testId: `token-link-${client.id}`,
                      onClick: () => void copy(client.link(token.key, server, chatLink)),
                    }))}
                  />
                  {token.status === TOKEN_STATUS.ENABLED ? (
                    <Button small onClick={() => void setStatus(token, TOKEN_STATUS.DISABLED)}>
                      {t("common.disable")}
                    </Button>
                  ) : (
                    <Button small onClick={() => void setStatus(token, TOKEN_STATUS.ENABLED)}>
                      {t("common.enable")}
                    </Button>
                  )}
                  <Button small onClick={() => setEditing(token)}>
                    {t("common.edit")}
                  </Button>
                  <Button small variant="danger" onClick={() => void remove(token)}>
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
        <TokenEditor
          token={editing === "new" ? null : editing}
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
