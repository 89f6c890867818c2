/**
 * Channels (admins): the upstream accounts the relay uses. Status badges; response time coloured
 * by speed, click it to test (or pick a model from "Test"); balance, click to refresh; inline
 * priority; enable/disable, edit, delete. Toolbar: test all, test disabled, delete disabled,
 * refresh all balances. Tests and balances are run by the health service and answered here.
 */
import { useEffect, useState, type KeyboardEvent } from "react";
import { api, ApiError } from "@/api/client";
import { usePagedList } from "@/lib/usePagedList";
import { ITEMS_PER_PAGE, type Channel } from "@/api/types";
import { useAuth } from "@/auth";
import { Modal, useConfirm } from "@/components/Modal";
import { Table } from "@/components/Table";
import { toast } from "@/components/Toast";
import { Badge, Button, Card, PageHeader, Pager, type Tone } from "@/components/ui";
import { useI18n, type MessageKey } from "@/i18n";
import { formatQuota, formatTime } from "@/lib/format";
import ChannelEditor from "./ChannelEditor";
import { channelTypeName } from "./channelTypes";
import styles from "./ChannelsPage.module.css";

/** channels.status */
const CHANNEL_STATUS = { ENABLED: 1, MANUALLY_DISABLED: 2, AUTO_DISABLED: 3 } as const;

const STATUS: Record<number, { label: MessageKey; tone: Tone }> = {
  [CHANNEL_STATUS.ENABLED]: { label: "channels.statusEnabled", tone: "green" },
  [CHANNEL_STATUS.MANUALLY_DISABLED]: { label: "channels.statusManual", tone: "red" },
  [CHANNEL_STATUS.AUTO_DISABLED]: { label: "channels.statusAuto", tone: "yellow" },
};

/** Response time (ms) → colour: under 1 s green, under 3 s yellow, slower red. */
function speedTone(channel: Channel): Tone {
  if (!channel.test_time) return "grey";
  if (channel.response_time < 1000) return "green";
  if (channel.response_time < 3000) return "yellow";
  return "red";
}

function splitList(value: string): string[] {
  return value
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean);
}

/** The priority cell: saved (PUT {id, priority}) on Enter or when the field loses focus. */
function PriorityInput({ channel, onSaved }: { channel: Channel; onSaved: (priority: number) => void }) {
  const { t } = useI18n();
  const [value, setValue] = useState(String(channel.priority));
  const [busy, setBusy] = useState(false);
  useEffect(() => setValue(String(channel.priority)), [channel.priority]);
  const save = async () => {
    const next = Number(value);
    if (value.trim() === "" || !Number.isInteger(next)) {
      toast.error(t("channels.numbersInvalid"));
      setValue(String(channel.priority));
      return;
    }
    if (next === channel.priority) return;
    setBusy(true);
    try {
      await api.put("/channel/", { id: channel.id, priority: next });
      toast.success(t("channels.prioritySaved", { name: channel.name, priority: next }));
      onSaved(next);
    } catch {
      setValue(String(channel.priority));
    } finally {
      setBusy(false);
    }
  };
  return (
    <input
      className={styles.priority}
      type="number"
      step={1}
      value={value}
      disabled={busy}
      aria-label={t("channels.priority")}
      data-testid="channel-priority"
      onChange={(e) => setValue(e.target.value)}
      onBlur={() => void save()}
      onKeyDown={(e: KeyboardEvent<HTMLInputElement>) => {
        if (e.key === "Enter") e.currentTarget.blur();
        if (e.key === "Escape") setValue(String(channel.priority));
      }}
    />
  );
}

/** "Test ▾": pick one of the channel's models to test it with (a dialog: never clipped by the table). */
function ModelPicker({ channel, onClose, onPick }: { channel: Channel; onClose: () => void; onPick: (model: string) => void }) {
  const { t } = useI18n();
  const [filter, setFilter] = useState("");
  const models = splitList(channel.models);
  const shown = models.filter((model) => model.toLowerCase().includes(filter.trim().toLowerCase()));
  return (
    <Modal open title={t("channels.testWith", { name: channel.name })} onClose={onClose}>
      <div className="stack">
        {models.length > 8 ? (
          <input type="search" placeholder={t("common.filter")} aria-label={t("common.filter")} value={filter} onChange={(e) => setFilter(e.target.value)} autoFocus />
        ) : null}
        <div className={styles.models} role="list">
          {shown.map((model) => (
            <Button key={model} small onClick={() => onPick(model)} data-testid={`channel-test-model-${model}`}>
              {model}
            </Button>
          ))}
        </div>
      </div>
    </Modal>
  );
}

export default function ChannelsPage() {
  const { t } = useI18n();
  const { status } = useAuth();
  const [editing, setEditing] = useState<Channel | "new" | null>(null);
  const { rows, setRows, page, setPage, keyword, setKeyword, searching, search, loading, load } =
    usePagedList<Channel>("/channel/");
  const [typeModels, setTypeModels] = useState<Record<string, string[]>>({});
  const [testing, setTesting] = useState<Set<number>>(new Set());
  const [balancing, setBalancing] = useState<Set<number>>(new Set());
  const [toolbarBusy, setToolbarBusy] = useState<string | null>(null);
  const [picking, setPicking] = useState<Channel | null>(null);
  const [confirm, confirmDialog] = useConfirm();


  useEffect(() => {
    void api.get<Record<string, string[]>>("/models").then(setTypeModels, () => undefined);
  }, []);

  const patchRow = (id: number, change: Partial<Channel>) =>
    setRows((previous) => previous.map((row) => (row.id === id ? { ...row, ...change } : row)));

  const mark = (setter: typeof setTesting, id: number, on: boolean) =>
    setter((previous) => {
      const next = new Set(previous);
      if (on) next.add(id);
      else next.delete(id);
      return next;
    });

  const test = async (channel: Channel, model = "") => {
    mark(setTesting, channel.id, true);
    try {
      const answer = await api.envelope<null>("GET", `/channel/test/${channel.id}`, { query: { model }, silent: true });
      const seconds = Number(answer.time ?? 0);
      toast.success(t("channels.testOk", { name: channel.name, model: String(answer.model || model), seconds: seconds.toFixed(2) }));
    } catch (error) {
      if (error instanceof ApiError) toast.error(t("channels.testFailed", { name: channel.name, message: error.message }));
    } finally {
      mark(setTesting, channel.id, false);
    }
    await load(); // health recorded the time, and may have changed the status
  };

  const refreshBalance = async (channel: Channel) => {
    mark(setBalancing, channel.id, true);
    try {
      const answer = await api.envelope<null>("GET", `/channel/update_balance/${channel.id}`, { silent: true });
      const balance = Number(answer.balance ?? 0);
      patchRow(channel.id, { balance, balance_updated_time: Math.floor(Date.now() / 1000) });
      toast.success(t("channels.balanceOk", { name: channel.name, balance: `$${balance.toFixed(2)}` }));
    } catch (error) {
      if (error instanceof ApiError) toast.error(t("channels.balanceFailed", { name: channel.name, message: error.message }));
    } finally {
      mark(setBalancing, channel.id, false);
    }
  };

  const setStatus = async (channel: Channel, next: number) => {
    try {
      await api.put("/channel/", { id: channel.id, status: next });
      toast.success(next === CHANNEL_STATUS.ENABLED ? t("channels.enabled", { name: channel.name }) : t("channels.disabled", { name: channel.name }));
      await load();
    } catch {
      // toast shown by the client
    }
  };

  const remove = async (channel: Channel) => {
    if (!(await confirm(t("channels.confirmDelete", { name: channel.name })))) return;
    try {
      await api.del(`/channel/${channel.id}`);
      toast.success(t("channels.deleted", { name: channel.name }));
      await load();
    } catch {
      // toast shown by the client
    }
  };

  const toolbar = async (action: string, run: () => Promise<void>) => {
    setToolbarBusy(action);
    try {
      await run();
    } catch {
      // toast shown by the client
    } finally {
      setToolbarBusy(null);
    }
  };

  const testAll = (scope: "all" | "disabled") =>
    toolbar(`test-${scope}`, async () => {
      await api.get("/channel/test", { query: { scope } });
      toast.success(scope === "all" ? t("channels.testAllStarted") : t("channels.testDisabledStarted"));
    });

  const deleteDisabled = () =>
    toolbar("delete-disabled", async () => {
      if (!(await confirm(t("channels.confirmDeleteDisabled")))) return;
      const count = await api.del<number>("/channel/disabled");
      toast.success(t("channels.deletedDisabled", { count }));
      await load();
    });

  const refreshAllBalances = () =>
    toolbar("balances", async () => {
      await api.get("/channel/update_balance");
      toast.success(t("channels.balancesStarted"));
    });

  return (
    <>
      <PageHeader
        title={t("nav.channels")}
        actions={
          <Button variant="primary" onClick={() => setEditing("new")} data-testid="channel-add">
            {t("channels.add")}
          </Button>
        }
      />
      <Card>
        <div className="stack">
          <form
            className="filters"
            onSubmit={(event) => {
              event.preventDefault();
              search();
            }}
          >
            <input
              type="search"
              placeholder={t("channels.searchPlaceholder")}
              value={keyword}
              onChange={(e) => setKeyword(e.target.value)}
              aria-label={t("common.search")}
            />
            <div className="btn-row">
              <Button type="submit">{t("common.search")}</Button>
              <Button onClick={() => void load()}>{t("common.refresh")}</Button>
            </div>
          </form>
          <div className="btn-row">
            <Button small busy={toolbarBusy === "test-all"} onClick={() => void testAll("all")} data-testid="channel-test-all">
              {t("channels.testAll")}
            </Button>
            <Button small busy={toolbarBusy === "test-disabled"} onClick={() => void testAll("disabled")} data-testid="channel-test-disabled">
              {t("channels.testDisabled")}
            </Button>
            <Button small busy={toolbarBusy === "balances"} onClick={() => void refreshAllBalances()} data-testid="channel-balance-all">
              {t("channels.refreshBalances")}
            </Button>
            <Button small variant="danger" busy={toolbarBusy === "delete-disabled"} onClick={() => void deleteDisabled()} data-testid="channel-delete-disabled">
              {t("channels.deleteDisabled")}
            </Button>
          </div>
        </div>
      </Card>
      <Card>
        <Table
          testId="channels-table"
          rows={rows}
          rowKey={(channel) => channel.id}
          loading={loading}
          empty={searching ? t("channels.noMatch") : t("channels.none")}
          columns={[
            { key: "id", label: "ID", render: (channel) => channel.id },
            {
              key: "name",
              label: t("channels.name"),
              render: (channel) => (
                <span data-channel-name={channel.name}>
                  <strong>{channel.name || "-"}</strong>
                  <br />
                  <span className="muted small">{channelTypeName(channel.type)}</span>
                </span>
              ),
            },
            { key: "group", label: t("channels.groups"), render: (channel) => splitList(channel.group).join(", ") || "-" },
            {
              key: "status",
              label: t("common.status"),
              render: (channel) => {
                const shown = STATUS[channel.status] ?? { label: "channels.statusUnknown" as MessageKey, tone: "grey" as Tone };
                return (
                  <span data-testid="channel-status" data-status={channel.status}>
                    <Badge tone={shown.tone}>{t(shown.label)}</Badge>
                  </span>
                );
              },
            },
            {
              key: "response",
              label: t("channels.responseTime"),
              className: "nowrap",
              render: (channel) => (
                <button
                  type="button"
                  className={`badge badge-${speedTone(channel)} ${styles.clickable}`}
                  onClick={() => void test(channel)}
                  disabled={testing.has(channel.id)}
                  title={channel.test_time ? t("channels.testedAt", { time: formatTime(channel.test_time) }) : t("channels.clickToTest")}
                  data-testid="channel-test"
                  data-tested={channel.test_time ? "yes" : "no"}
                >
                  {testing.has(channel.id)
                    ? t("channels.testing")
                    : channel.test_time
                      ? t("channels.seconds", { seconds: (channel.response_time / 1000).toFixed(2) })
                      : t("channels.notTested")}
                </button>
              ),
            },
            { key: "used", label: t("channels.used"), render: (channel) => formatQuota(channel.used_quota, status) },
            {
              key: "balance",
              label: t("channels.balance"),
              className: "nowrap",
              render: (channel) => (
                <button
                  type="button"
                  className={`badge badge-${channel.balance_updated_time ? "blue" : "grey"} ${styles.clickable}`}
                  onClick={() => void refreshBalance(channel)}
                  disabled={balancing.has(channel.id)}
                  title={channel.balance_updated_time ? t("channels.balanceAt", { time: formatTime(channel.balance_updated_time) }) : t("channels.clickToRefresh")}
                  data-testid="channel-balance"
                >
                  {balancing.has(channel.id)
                    ? t("channels.refreshing")
                    : channel.balance_updated_time
                      ? `$${channel.balance.toFixed(2)}`
                      : t("channels.balanceUnknown")}
                </button>
              ),
            },
            {
              key: "priority",
              label: t("channels.priority"),
              render: (channel) => <PriorityInput channel={channel} onSaved={(priority) => patchRow(channel.id, { priority })} />,
            },
            {
              key: "actions",
              label: t("common.actions"),
              render: (channel) => (
                <div className="btn-row" data-channel-name={channel.name}>
                  <Button small onClick={() => setPicking(channel)} disabled={testing.has(channel.id)} data-testid="channel-test-menu">
                    {t("channels.test")} ▾
                  </Button>
                  {channel.status === CHANNEL_STATUS.ENABLED ? (
                    <Button small onClick={() => void setStatus(channel, CHANNEL_STATUS.MANUALLY_DISABLED)} data-testid="channel-disable">
                      {t("common.disable")}
                    </Button>
                  ) : (
                    <Button small onClick={() => void setStatus(channel, CHANNEL_STATUS.ENABLED)} data-testid="channel-enable">
                      {t("common.enable")}
                    </Button>
                  )}
                  <Button small onClick={() => setEditing(channel)} data-testid="channel-edit">
                    {t("common.edit")}
                  </Button>
                  <Button small variant="danger" onClick={() => void remove(channel)} data-testid="channel-delete">
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
        <ChannelEditor
          channel={editing === "new" ? null : editing}
          typeModels={typeModels}
          onClose={() => setEditing(null)}
          onSaved={() => {
            setEditing(null);
            void load();
          }}
        />
      ) : null}
      {picking !== null ? (
        <ModelPicker
          channel={picking}
          onClose={() => setPicking(null)}
          onPick={(model) => {
            setPicking(null);
            void test(picking, model);
          }}
        />
      ) : null}
      {confirmDialog}
    </>
  );
}
