/**
 * Logs: the caller's own (`/api/log/self`), or everyone's for admins (`/api/log/`, with user and
 * channel filters). Filters: type, time range, token, model. The sum of the quota the filters
 * match comes from `…/stat`.
 */
import { useCallback, useEffect, useState, type FormEvent } from "react";
import { api } from "@/api/client";
import { ITEMS_PER_PAGE, LOG_TYPE, type LogItem, type LogStat } from "@/api/types";
import { useAuth } from "@/auth";
import { Table, type Column } from "@/components/Table";
import { Badge, Button, Card, Field, PageHeader, Pager, type Tone } from "@/components/ui";
import { useI18n, type MessageKey } from "@/i18n";
import { formatQuota, formatTime, fromDateTimeLocal } from "@/lib/format";

const TYPES: { value: number; label: MessageKey; tone: Tone }[] = [
  { value: LOG_TYPE.ALL, label: "logs.typeAll", tone: "grey" },
  { value: LOG_TYPE.TOPUP, label: "logs.typeTopup", tone: "green" },
  { value: LOG_TYPE.CONSUME, label: "logs.typeConsume", tone: "blue" },
  { value: LOG_TYPE.MANAGE, label: "logs.typeManage", tone: "purple" },
  { value: LOG_TYPE.SYSTEM, label: "logs.typeSystem", tone: "yellow" },
  { value: LOG_TYPE.TEST, label: "logs.typeTest", tone: "grey" },
];

interface Filters {
  type: number;
  start: string;
  end: string;
  token_name: string;
  model_name: string;
  username: string;
  channel: string;
}

const EMPTY: Filters = { type: LOG_TYPE.ALL, start: "", end: "", token_name: "", model_name: "", username: "", channel: "" };

export default function LogsPage() {
  const { t } = useI18n();
  const { status, isAdmin } = useAuth();
  const [form, setForm] = useState<Filters>(EMPTY);
  const [filters, setFilters] = useState<Filters>(EMPTY);
  const [page, setPage] = useState(0);
  const [rows, setRows] = useState<LogItem[]>([]);
  const [stat, setStat] = useState<number | null>(null);
  const [loading, setLoading] = useState(false);
  const [reload, setReload] = useState(0);

  const query = useCallback(
    (f: Filters) => ({
      type: f.type || undefined,
      start_timestamp: fromDateTimeLocal(f.start) || undefined,
      end_timestamp: fromDateTimeLocal(f.end) || undefined,
      token_name: f.token_name.trim(),
      model_name: f.model_name.trim(),
      ...(isAdmin ? { username: f.username.trim(), channel: Number(f.channel) || undefined } : {}),
    }),
    [isAdmin],
  );

  useEffect(() => {
    const base = isAdmin ? "/log/" : "/log/self";
    setLoading(true);
    api
      .get<LogItem[]>(base, { query: { ...query(filters), p: page, size: ITEMS_PER_PAGE } })
      .then(setRows, () => setRows([]))
      .finally(() => setLoading(false));
  }, [filters, page, isAdmin, query, reload]);

  useEffect(() => {
    const path = isAdmin ? "/log/stat" : "/log/self/stat";
    api.get<LogStat>(path, { query: query(filters) }).then(
      (answer) => setStat(answer.quota),
      () => setStat(null),
    );
  }, [filters, isAdmin, query, reload]);

  const set = (key: keyof Filters) => (event: { target: { value: string } }) =>
    setForm((previous) => ({ ...previous, [key]: key === "type" ? Number(event.target.value) : event.target.value }));

  const submit = (event: FormEvent) => {
    event.preventDefault();
    setPage(0);
    setFilters(form);
    setReload((n) => n + 1);
  };

  const columns: Column<LogItem>[] = [
    { key: "time", label: t("logs.time"), className: "nowrap", render: (log) => formatTime(log.created_at) },
    ...(isAdmin
      ? [
          { key: "channel", label: t("logs.channel"), render: (log: LogItem) => (log.channel ? log.channel : "-") },
          { key: "user", label: t("logs.user"), render: (log: LogItem) => log.username || "-" },
        ]
      : []),
    { key: "token", label: t("logs.token"), render: (log) => log.token_name || "-" },
    {
      key: "type",
      label: t("logs.type"),
      render: (log) => {
        const type = TYPES.find((item) => item.value === log.type);
        return <Badge tone={type?.tone ?? "grey"}>{type ? t(type.label) : String(log.type)}</Badge>;
      },
    },
    { key: "model", label: t("logs.model"), render: (log) => (log.model_name ? <Badge tone="blue">{log.model_name}</Badge> : "-") },
    { key: "prompt", label: t("logs.prompt"), className: "right", render: (log) => log.prompt_tokens || "-" },
    { key: "completion", label: t("logs.completion"), className: "right", render: (log) => log.completion_tokens || "-" },
    { key: "quota", label: t("logs.quota"), className: "right nowrap", render: (log) => (log.quota ? formatQuota(log.quota, status, 6) : "-") },
    {
      key: "elapsed",
      label: t("logs.elapsed"),
      className: "right nowrap",
      render: (log) => (log.elapsed_time ? `${(log.elapsed_time / 1000).toFixed(2)} s${log.is_stream ? ` · ${t("logs.stream")}` : ""}` : "-"),
    },
    { key: "content", label: t("logs.content"), className: "small", render: (log) => log.content || "-" },
  ];

  return (
    <>
      <PageHeader title={t("nav.logs")} />
      <Card>
        <form className="filters" onSubmit={submit}>
          <Field label={t("logs.type")}>
            <select name="type" value={form.type} onChange={set("type")}>
              {TYPES.map((type) => (
                <option key={type.value} value={type.value}>
                  {t(type.label)}
                </option>
              ))}
            </select>
          </Field>
          <Field label={t("logs.start")}>
            <input type="datetime-local" name="start" value={form.start} onChange={set("start")} />
          </Field>
          <Field label={t("logs.end")}>
            <input type="datetime-local" name="end" value={form.end} onChange={set("end")} />
          </Field>
          <Field label={t("logs.token")}>
            <input name="token_name" value={form.token_name} onChange={set("token_name")} />
          </Field>
          <Field label={t("logs.model")}>
            <input name="model_name" value={form.model_name} onChange={set("model_name")} />
          </Field>
          {isAdmin ? (
            <>
              <Field label={t("logs.user")}>
                <input name="username" value={form.username} onChange={set("username")} />
              </Field>
              <Field label={t("logs.channelId")}>
                <input name="channel" type="number" min={0} value={form.channel} onChange={set("channel")} />
              </Field>
            </>
          ) : null}
          <div className="btn-row">
            <Button type="submit" variant="primary" data-testid="logs-search">
              {t("common.search")}
            </Button>
            <Button
              onClick={() => {
                setForm(EMPTY);
                setFilters(EMPTY);
                setPage(0);
                setReload((n) => n + 1);
              }}
            >
              {t("common.reset")}
            </Button>
          </div>
        </form>
        <p className="small" data-testid="logs-stat">
          {t("logs.sum")}: <strong>{stat === null ? "-" : formatQuota(stat, status, 6)}</strong>
        </p>
      </Card>
      <Card>
        <Table testId="logs-table" rows={rows} rowKey={(log) => `${log.id}-${log.created_at}-${log.request_id}-${log.content}`} loading={loading} columns={columns} />
        <Pager page={page} hasNext={rows.length === ITEMS_PER_PAGE} onPage={setPage} />
      </Card>
    </>
  );
}
