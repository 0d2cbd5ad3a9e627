// SPDX-License-Identifier: GPL-2.0
/* One vocabulary for states and counters (names.h). */
#include "names.h"

static const char *const be_states[] = { "unused", "ready", "draining",
					 "ejected" };
static const char *const roles[] = { "none", "client", "backend", "injector" };
static const char *const svc_states[] = { "unused", "open", "closed" };

#define COUNTER_NAME(id, name, help) #name,
#define COUNTER_HELP(id, name, help) help,
static const char *const counter_names[H2LB_CNT_MAX] = { H2LB_COUNTERS(
	COUNTER_NAME) };
static const char *const counter_helps[H2LB_CNT_MAX] = { H2LB_COUNTERS(
	COUNTER_HELP) };

#define NAME_OF(table, i)                                                      \
	((unsigned int)(i) < sizeof(table) / sizeof(table[0]) ? table[i] : "?")

const char *backend_state_name(uint32_t state)
{
	return NAME_OF(be_states, state);
}

const char *role_name(uint32_t role)
{
	return NAME_OF(roles, role);
}

const char *service_state_name(uint32_t state)
{
	return NAME_OF(svc_states, state);
}

const char *counter_name(int i)
{
	return NAME_OF(counter_names, i);
}

const char *counter_help(int i)
{
	return NAME_OF(counter_helps, i);
}

const char *event_name(int type)
{
	static const char *const names[H2LB_EV_MAX] = {
		[0] = "none",
		[H2LB_EV_CLOSED] = "closed",
		[H2LB_EV_SETTINGS] = "settings",
		[H2LB_EV_WINDOW] = "window",
		[H2LB_EV_GOAWAY] = "goaway",
		[H2LB_EV_LEG_BOUND] = "leg_bound",
		[H2LB_EV_REFUSED] = "refused",
		[H2LB_EV_CONN_ERROR] = "conn_error",
		[H2LB_EV_STREAM_ERROR] = "stream_error",
		[H2LB_EV_STREAM_WINDOW] = "stream_window",
		[H2LB_EV_DATA_PROGRESS] = "data_progress",
		[H2LB_EV_PING] = "ping",
		[H2LB_EV_DIVERT] = "divert",
		[H2LB_EV_SETTINGS_ACK] = "settings_ack",
	};

	return NAME_OF(names, type);
}

const char *service_name(const struct h2lb_service *svc, uint32_t i)
{
	if (i >= H2LB_MAX_SERVICES || !svc[i].name[0])
		return "?";
	return svc[i].name;
}

uint64_t latency_quantile_us(const __u64 *h, double q)
{
	uint64_t total = 0, seen = 0;

	for (int i = 0; i < H2LB_LAT_BUCKETS; i++)
		total += h[i];
	if (!total)
		return 0;
	for (int i = 0; i < H2LB_LAT_BUCKETS; i++) {
		seen += h[i];
		if (seen >= q * total)
			return 2ull << i;
	}
	return 2ull << (H2LB_LAT_BUCKETS - 1);
}
