/**
 * Wire types, named. They come from `schema.d.ts`, generated from the served OpenAPI schema
 * (`npm run gen:api` against a running `oneapi run`; see CONVENTIONS.md).
 */
import type { components } from "./schema";

type Schemas = components["schemas"];

export type Status = Schemas["Status"];
export type User = Schemas["UserRead"];
export type LoggedInUser = Schemas["LoggedInUser"];
export type Token = Schemas["TokenRead"];
export type TokenCreate = Schemas["TokenCreate"];
export type TokenUpdate = Schemas["TokenUpdate"];
export type LogItem = Schemas["LogItem"];
export type LogStat = Schemas["LogStat"];
export type DailyUsage = Schemas["DailyUsage"];
export type ChannelStat = Schemas["ChannelStat"];
export type Channel = Schemas["ChannelOut"];
export type ChannelCreate = Schemas["ChannelCreate"];
export type ChannelUpdate = Schemas["ChannelUpdate"];
export type Redemption = Schemas["RedemptionRead"];
export type OptionItem = Schemas["OptionItem"];
export type OptionUpdate = Schemas["OptionUpdate"];

/** users.role */
export const ROLE = { GUEST: 0, COMMON: 1, ADMIN: 10, ROOT: 100 } as const;
export type Role = (typeof ROLE)[keyof typeof ROLE];

/** tokens.status */
export const TOKEN_STATUS = { ENABLED: 1, DISABLED: 2, EXPIRED: 3, EXHAUSTED: 4 } as const;

/** logs.type (0 = every type, in filters) */
export const LOG_TYPE = { ALL: 0, TOPUP: 1, CONSUME: 2, MANAGE: 3, SYSTEM: 4, TEST: 5 } as const;

/** One API's page size. */
export const ITEMS_PER_PAGE = 10;
