/**
 * Dashboard: the caller's usage per UTC day and model (`/api/user/dashboard?days=`): totals,
 * requests / quota / tokens per day, and spend by model, over a chosen range of UTC days; for
 * admins also the whole site's spend by channel (`/api/log/channel_stat`) over that range.
 */
import { useEffect, useMemo, useState } from "react";
import {
  Bar,
  BarChart,
  CartesianGrid,
  Cell,
  Legend,
  Pie,
  PieChart,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from "recharts";
import { api } from "@/api/client";
import type { Channel, ChannelStat, DailyUsage } from "@/api/types";
import { useAuth } from "@/auth";
import { Table } from "@/components/Table";
import { Card, Empty, PageHeader, Spinner, Tabs } from "@/components/ui";
import { useI18n } from "@/i18n";
import { formatNumber, formatQuota, fromQuota } from "@/lib/format";
import styles from "./DashboardPage.module.css";

const PALETTE = ["#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#ea580c", "#4b5563"];
const RANGES = [1, 7, 30, 90] as const;
const DAY_SECONDS = 86_400;
/** One page of channels names the bars; a channel beyond it shows as "#id". */
const CHANNEL_NAMES_PAGE = 100;
type Range = (typeof RANGES)[number];

/** The last `days` UTC days, oldest first, as "YYYY-MM-DD". */
function lastDays(days: number): string[] {
  const today = new Date();
  const out: string[] = [];
  for (let back = days - 1; back >= 0; back--) {
    const day = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() - back));
    out.push(day.toISOString().slice(0, 10));
  }
  return out;
}

/** An axis tick: small amounts (a few requests cost millionths of a dollar) stay readable. */
function compact(value: number): string {
  if (value === 0) return "0";
  if (Math.abs(value) < 0.01) return value.toExponential(1);
  if (Math.abs(value) >= 1000) return new Intl.NumberFormat(undefined, { notation: "compact" }).format(value);
  return String(Number(value.toFixed(2)));
}

/** The range's first and last second: from the first UTC day's midnight to today's end. */
function rangeSeconds(days: number): { start: number; end: number } {
  const today = Math.floor(Date.now() / 1000 / DAY_SECONDS);
  return { start: (today - days + 1) * DAY_SECONDS, end: (today + 1) * DAY_SECONDS - 1 };
}

interface ModelTotal {
  model: string;
  requests: number;
  quota: number;
  tokens: number;
}

export default function DashboardPage() {
  const { t } = useI18n();
  const { status, user, isAdmin } = useAuth();
  const [rows, setRows] = useState<DailyUsage[] | null>(null);
  const [range, setRange] = useState<Range>(7);
  const [channelStats, setChannelStats] = useState<ChannelStat[] | null>(null);
  const [channelNames, setChannelNames] = useState<Map<number, string>>(new Map());

  useEffect(() => {
    let current = true;
    void api.get<DailyUsage[]>("/user/dashboard", { query: { days: range } }).then(
      (data) => current && setRows(data),
      () => current && setRows([]),
    );
    return () => {
      current = false;
    };
  }, [range]);

  useEffect(() => {
    if (!isAdmin) return;
    let current = true;
    const { start, end } = rangeSeconds(range);
    void api.get<ChannelStat[]>("/log/channel_stat", { query: { start_timestamp: start, end_timestamp: end } }).then(
      (data) => current && setChannelStats(data),
      () => current && setChannelStats([]),
    );
    return () => {
      current = false;
    };
  }, [isAdmin, range]);

  useEffect(() => {
    if (!isAdmin) return;
    void api.get<Channel[]>("/channel/", { query: { p: 0, size: CHANNEL_NAMES_PAGE } }).then(
      (channels) => setChannelNames(new Map(channels.map((channel) => [channel.id, channel.name]))),
      () => undefined,
    );
  }, [isAdmin]);

  const byChannel = useMemo(
    () =>
      (channelStats ?? []).map((stat) => ({
        name: stat.channel ? (channelNames.get(stat.channel) ?? `#${stat.channel}`) : t("dashboard.noChannel"),
        quota: fromQuota(stat.quota, status),
        requests: stat.request_count,
        tokens: stat.prompt_tokens + stat.completion_tokens,
      })),
    [channelStats, channelNames, status, t],
  );

  const view = useMemo(() => {
    const days = lastDays(range);
    const inRange = (rows ?? []).filter((row) => days.includes(row.Day.slice(0, 10)));
    const models = Array.from(new Set(inRange.map((row) => row.ModelName || "-"))).sort();
    const perDay = days.map((day) => {
      const point: Record<string, number | string> = { day: day.slice(5), requests: 0, quota: 0, tokens: 0 };
      for (const row of inRange.filter((r) => r.Day.slice(0, 10) === day)) {
        const model = row.ModelName || "-";
        point.requests = (point.requests as number) + row.RequestCount;
        point.quota = (point.quota as number) + fromQuota(row.Quota, status);
        point.tokens = (point.tokens as number) + row.PromptTokens + row.CompletionTokens;
        point[`q:${model}`] = ((point[`q:${model}`] as number) ?? 0) + fromQuota(row.Quota, status);
        point[`r:${model}`] = ((point[`r:${model}`] as number) ?? 0) + row.RequestCount;
      }
      return point;
    });
    const byModel = new Map<string, ModelTotal>();
    for (const row of inRange) {
      const model = row.ModelName || "-";
      const total = byModel.get(model) ?? { model, requests: 0, quota: 0, tokens: 0 };
      total.requests += row.RequestCount;
      total.quota += row.Quota;
      total.tokens += row.PromptTokens + row.CompletionTokens;
      byModel.set(model, total);
    }
    const totals = Array.from(byModel.values()).sort((a, b) => b.quota - a.quota || b.requests - a.requests);
    return {
      perDay,
      models,
      totals,
      requests: totals.reduce((sum, m) => sum + m.requests, 0),
      quota: totals.reduce((sum, m) => sum + m.quota, 0),
      tokens: totals.reduce((sum, m) => sum + m.tokens, 0),
    };
  }, [rows, range, status]);

  const unit = status?.display_in_currency === false ? t("dashboard.quotaUnit") : "$";
  const color = (index: number) => PALETTE[index % PALETTE.length];

  return (
    <>
      <PageHeader
        title={t("nav.dashboard")}
        actions={
          <Tabs<`${Range}`>
            value={`${range}`}
            onChange={(value) => setRange(Number(value) as Range)}
            options={RANGES.map((days) => ({ value: `${days}`, label: days === 1 ? t("dashboard.today") : t("dashboard.lastDays", { days }) }))}
          />
        }
      />
      <div className={styles.stats}>
        <Card>
          <div className="muted small">{t("dashboard.balance")}</div>
          <div className={styles.big}>{user ? formatQuota(user.quota, status) : "-"}</div>
        </Card>
        <Card>
          <div className="muted small">{t("dashboard.requests")}</div>
          <div className={styles.big} data-testid="stat-requests">
            {formatNumber(view.requests)}
          </div>
        </Card>
        <Card>
          <div className="muted small">{t("dashboard.spent")}</div>
          <div className={styles.big} data-testid="stat-quota">
            {formatQuota(view.quota, status, 4)}
          </div>
        </Card>
        <Card>
          <div className="muted small">{t("dashboard.tokens")}</div>
          <div className={styles.big} data-testid="stat-tokens">
            {formatNumber(view.tokens)}
          </div>
        </Card>
      </div>
      {rows === null ? (
        <Spinner />
      ) : (
        <>
          <div className={styles.charts}>
            <Card title={t("dashboard.requestsPerDay")}>
              <div className={styles.chart} data-testid="chart-requests">
                <ResponsiveContainer width="100%" height="100%">
                  <BarChart data={view.perDay}>
                    <CartesianGrid strokeDasharray="3 3" stroke="var(--border)" />
                    <XAxis dataKey="day" stroke="var(--muted)" fontSize={12} />
                    <YAxis allowDecimals={false} stroke="var(--muted)" fontSize={12} width={40} />
                    <Tooltip contentStyle={{ background: "var(--surface)", border: "1px solid var(--border)" }} />
                    {view.models.map((model, index) => (
                      <Bar key={model} dataKey={`r:${model}`} name={model} stackId="r" fill={color(index)} isAnimationActive={false} />
                    ))}
                  </BarChart>
                </ResponsiveContainer>
              </div>
            </Card>
            <Card title={`${t("dashboard.quotaPerDay")} (${unit})`}>
              <div className={styles.chart} data-testid="chart-quota">
                <ResponsiveContainer width="100%" height="100%">
                  <BarChart data={view.perDay}>
                    <CartesianGrid strokeDasharray="3 3" stroke="var(--border)" />
                    <XAxis dataKey="day" stroke="var(--muted)" fontSize={12} />
                    <YAxis stroke="var(--muted)" fontSize={12} width={60} tickFormatter={compact} />
                    <Tooltip
                      contentStyle={{ background: "var(--surface)", border: "1px solid var(--border)" }}
                      formatter={(value) => Number(value).toFixed(6)}
                    />
                    <Legend />
                    {view.models.map((model, index) => (
                      <Bar key={model} dataKey={`q:${model}`} name={model} stackId="q" fill={color(index)} isAnimationActive={false} />
                    ))}
                  </BarChart>
                </ResponsiveContainer>
              </div>
            </Card>
            <Card title={t("dashboard.tokensPerDay")}>
              <div className={styles.chart} data-testid="chart-tokens">
                <ResponsiveContainer width="100%" height="100%">
                  <BarChart data={view.perDay}>
                    <CartesianGrid strokeDasharray="3 3" stroke="var(--border)" />
                    <XAxis dataKey="day" stroke="var(--muted)" fontSize={12} />
                    <YAxis allowDecimals={false} stroke="var(--muted)" fontSize={12} width={50} />
                    <Tooltip contentStyle={{ background: "var(--surface)", border: "1px solid var(--border)" }} />
                    <Bar dataKey="tokens" name={t("dashboard.tokens")} fill={PALETTE[5]} isAnimationActive={false} />
                  </BarChart>
                </ResponsiveContainer>
              </div>
            </Card>
            <Card title={t("dashboard.byModel")}>
              {view.totals.length === 0 ? (
                <Empty>{t("dashboard.noUsage")}</Empty>
              ) : (
                <div className={styles.chart} data-testid="chart-models">
                  <ResponsiveContainer width="100%" height="100%">
                    <PieChart>
                      <Pie data={view.totals} dataKey="quota" nameKey="model" outerRadius="75%" innerRadius="45%" isAnimationActive={false}>
                        {view.totals.map((total) => (
                          <Cell key={total.model} fill={color(view.models.indexOf(total.model))} />
                        ))}
                      </Pie>
                      <Tooltip formatter={(value) => formatQuota(Number(value), status, 6)} />
                      <Legend />
                    </PieChart>
                  </ResponsiveContainer>
                </div>
              )}
            </Card>
            {isAdmin ? (
              <Card title={`${t("dashboard.byChannel")} (${unit})`}>
                {channelStats === null ? (
                  <Spinner />
                ) : byChannel.length === 0 ? (
                  <Empty>{t("dashboard.noUsage")}</Empty>
                ) : (
                  <div
                    className={styles.chart}
                    style={{ height: `max(16rem, ${byChannel.length * 2.2 + 3}rem)` }}
                    data-testid="chart-channels"
                  >
                    <ResponsiveContainer width="100%" height="100%">
                      <BarChart data={byChannel} layout="vertical" margin={{ left: 8, right: 16 }}>
                        <CartesianGrid strokeDasharray="3 3" stroke="var(--border)" />
                        <XAxis type="number" stroke="var(--muted)" fontSize={12} tickFormatter={compact} />
                        <YAxis type="category" dataKey="name" stroke="var(--muted)" fontSize={12} width={100} interval={0} />
                        <Tooltip
                          contentStyle={{ background: "var(--surface)", border: "1px solid var(--border)" }}
                          formatter={(value) => Number(value).toFixed(6)}
                        />
                        <Bar dataKey="quota" name={t("dashboard.spent")} fill={PALETTE[0]} maxBarSize={28} isAnimationActive={false} />
                      </BarChart>
                    </ResponsiveContainer>
                  </div>
                )}
              </Card>
            ) : null}
          </div>
          <Card title={t("dashboard.modelTable")}>
            <Table
              testId="dashboard-models"
              rows={view.totals}
              rowKey={(total) => total.model}
              empty={t("dashboard.noUsage")}
              columns={[
                { key: "model", label: t("logs.model"), render: (total) => total.model },
                { key: "requests", label: t("dashboard.requests"), className: "right", render: (total) => formatNumber(total.requests) },
                { key: "tokens", label: t("dashboard.tokens"), className: "right", render: (total) => formatNumber(total.tokens) },
                { key: "quota", label: t("dashboard.spent"), className: "right", render: (total) => formatQuota(total.quota, status, 6) },
              ]}
            />
            <p className="muted small">{t("dashboard.utcNote")}</p>
          </Card>
        </>
      )}
    </>
  );
}
