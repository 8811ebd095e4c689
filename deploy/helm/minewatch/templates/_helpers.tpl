{{/* Names, labels, and the two config files, rendered from values. */}}

{{- define "minewatch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "minewatch.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "minewatch.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "minewatch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one component (agent or server): call with (dict "ctx" $ "component" "agent"). */}}
{{- define "minewatch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "minewatch.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "minewatch.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "minewatch.agentServiceAccount" -}}
{{- if .Values.serviceAccount.agent.create }}{{ default (printf "%s-agent" (include "minewatch.fullname" .)) .Values.serviceAccount.agent.name }}{{ else }}{{ default "default" .Values.serviceAccount.agent.name }}{{ end }}
{{- end }}

{{- define "minewatch.serverServiceAccount" -}}
{{- if .Values.serviceAccount.server.create }}{{ default (printf "%s-server" (include "minewatch.fullname" .)) .Values.serviceAccount.server.name }}{{ else }}{{ default "default" .Values.serviceAccount.server.name }}{{ end }}
{{- end }}

{{- define "minewatch.serverName" -}}{{ include "minewatch.fullname" . }}-server{{- end }}
{{- define "minewatch.serverHost" -}}{{ include "minewatch.serverName" . }}.{{ .Release.Namespace }}.svc{{- end }}
{{- define "minewatch.authSecret" -}}{{ default (printf "%s-auth" (include "minewatch.fullname" .)) .Values.auth.existingSecret }}{{- end }}
{{- define "minewatch.tlsSecret" -}}{{ default (printf "%s-server-tls" (include "minewatch.fullname" .)) .Values.server.tls.existingSecret }}{{- end }}

{{/* A ClusterRoleBinding of the server's ServiceAccount: call with (dict "ctx" $ "name" BINDING "role" CLUSTERROLE). */}}
{{- define "minewatch.serverClusterRoleBinding" -}}
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {{ .name }}
  labels:
    {{- include "minewatch.labels" .ctx | nindent 4 }}
    app.kubernetes.io/component: server
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: {{ .role }}
subjects:
  - kind: ServiceAccount
    name: {{ include "minewatch.serverServiceAccount" .ctx }}
    namespace: {{ .ctx.Release.Namespace }}
{{- end }}

{{/* Where files land in the containers (the config files name them). */}}
{{- define "minewatch.rulesDir" -}}/etc/minewatch/rules.d{{- end }}
{{- define "minewatch.secretsDir" -}}/etc/minewatch/secrets{{- end }}
{{/* The agent's projected ServiceAccount token (its identity at the server), and its audience. */}}
{{- define "minewatch.identityDir" -}}/etc/minewatch/identity{{- end }}
{{- define "minewatch.tokenAudience" -}}minewatch{{- end }}
{{- define "minewatch.tlsDir" -}}/etc/minewatch/tls{{- end }}
{{- define "minewatch.stateDir" -}}/var/lib/minewatch{{- end }}
{{- define "minewatch.admissionClientCADir" -}}/etc/minewatch/admission-client-ca{{- end }}

{{/* "true" when the admission webhook requires a credential (a token or a client certificate). */}}
{{- define "minewatch.admissionAuthenticated" -}}
{{- if or .Values.server.admission.token .Values.server.admission.clientCA.existingSecret }}true{{ end }}
{{- end }}

{{/* rules_files: rulesFiles, then each customRules file by name. Fails on a name a ConfigMap key cannot carry. */}}
{{- define "minewatch.rulesFiles" -}}
{{- $files := list }}
{{- range .Values.rulesFiles }}{{ $files = append $files . }}{{ end }}
{{- range $name := keys .Values.customRules | sortAlpha }}
{{- if not (regexMatch "^[-._a-zA-Z0-9]+$" $name) }}
{{- fail (printf "customRules: %q is not a usable file name: use letters, digits, '-', '_' and '.' only (e.g. my_rules.yaml)" $name) }}
{{- end }}
{{- $files = append $files (printf "%s/%s" (include "minewatch.rulesDir" $) $name) }}
{{- end }}
{{- toJson $files }}
{{- end }}

{{/* cryptnono's chart keys that only shape its own pods: left out of minewatch's config. */}}
{{- define "minewatch.detectors" -}}
{{- $skip := list "resources" "metrics" "env" "image" "nodeSelector" "tolerations" "affinity" "podAnnotations" "priorityClassName" "threadpoolSize" "containerdHostPath" "dockerHostPath" "lookupContainer" }}
{{- $out := dict }}
{{- range $name, $d := .Values.detectors }}
{{- if kindIs "map" $d }}
{{- $kept := dict }}
{{- range $k, $v := $d }}{{ if not (has $k $skip) }}{{ $_ := set $kept $k $v }}{{ end }}{{ end }}
{{- $_ := set $out $name $kept }}
{{- else }}
{{- $_ := set $out $name $d }}
{{- end }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/* The actions named by any response.actions entry, as a JSON list. */}}
{{- define "minewatch.responseActions" -}}
{{- $names := list }}
{{- range .Values.response.actions }}{{ range .do }}{{ $names = append $names . }}{{ end }}{{ end }}
{{- toJson ($names | uniq) }}
{{- end }}

{{/* "true" when the server may act on the cluster with this action: enforce mode and an actions entry names it. Call with (dict "ctx" $ "action" "delete_pod"). */}}
{{- define "minewatch.enforces" -}}
{{- $actions := include "minewatch.responseActions" .ctx | fromJsonArray }}
{{- if and (eq .ctx.Values.response.mode "enforce") (has .action $actions) }}true{{ end }}
{{- end }}

{{/* kill_container in enforce mode writes cgroup.kill / freezer.state: only then is the cgroup fs mounted writable. */}}
{{- define "minewatch.agentWritesCgroups" -}}
{{- include "minewatch.enforces" (dict "ctx" . "action" "kill_container") }}
{{- end }}

{{/* "true" when the agent may signal processes: a killing detector is on, or kill / kill_container is enforced. */}}
{{- define "minewatch.agentKills" -}}
{{- $d := .Values.detectors }}
{{- if or (dig "execwhacker" "enabled" false $d) (dig "tcpflowkiller" "enabled" false $d) (include "minewatch.enforces" (dict "ctx" . "action" "kill")) (include "minewatch.agentWritesCgroups" .) }}true{{ end }}
{{- end }}

{{/* Fleet mode's mount points, and "true" when each engine is configured. */}}
{{- define "minewatch.fleetDir" -}}/etc/minewatch/fleet{{- end }}
{{- define "minewatch.agentNatsDir" -}}/etc/minewatch/nats{{- end }}
{{- define "minewatch.natsCADir" -}}/etc/minewatch/nats-ca{{- end }}
{{- define "minewatch.fleetNats" -}}{{ if .Values.fleet.nats.url }}true{{ end }}{{- end }}
{{- define "minewatch.fleetPostgres" -}}{{ if .Values.fleet.postgres.url }}true{{ end }}{{- end }}

{{/* More than one server replica only on the shared engines: SQLite is one file with one writer. */}}
{{- define "minewatch.checkReplicas" -}}
{{- if gt (int .Values.server.replicas) 1 }}
{{- if not (and .Values.fleet.nats.url .Values.fleet.postgres.url) }}
{{- fail (printf "server.replicas is %v, but more than one server replica needs fleet.nats.url and fleet.postgres.url both set (the default SQLite store is one file with one writer): set both, or server.replicas: 1" .Values.server.replicas) }}
{{- end }}
{{- end }}
{{- if and .Values.fleet.postgres.url (not .Values.fleet.postgres.existingSecret) (not (regexMatch "^postgres(ql)?://[^/:@]+:[^@]+@" .Values.fleet.postgres.url)) }}
{{- fail "fleet.postgres.url is set without a password: set fleet.postgres.existingSecret to a Secret holding it (key fleet.postgres.passwordKey)" }}
{{- end }}
{{- if and .Values.fleet.nats.url (not .Values.fleet.nats.server.existingSecret) }}
{{- fail "fleet.nats.url is set but fleet.nats.server.existingSecret is not: the servers need their own NATS user (a Secret with its user and password; see docs/fleet.md)" }}
{{- end }}
{{- end }}

{{/* alerts.forward of an agent (fleet.nats.url set). */}}
{{- define "minewatch.agentForward" -}}
{{- $n := .Values.fleet.nats }}
{{- $dir := include "minewatch.agentNatsDir" . }}
{{- $f := dict "url" $n.url "stream" $n.stream "subject_prefix" $n.subjectPrefix }}
{{- if eq $n.agents.auth "creds" }}
{{- $_ := set $f "creds_file" (printf "%s/agent.creds" $dir) }}
{{- else if eq $n.agents.auth "password" }}
{{- $_ := set $f "user" (printf "%s{hostname}" $n.agents.userPrefix) }}
{{- $_ := set $f "password_file" (printf "%s/password" $dir) }}
{{- else }}
{{- fail (printf "fleet.nats.agents.auth: %q is not password or creds" $n.agents.auth) }}
{{- end }}
{{- if $n.caSecret }}{{ $_ := set $f "tls" (dict "ca_file" (printf "%s/ca.crt" (include "minewatch.natsCADir" .))) }}{{ end }}
{{- toJson $f }}
{{- end }}

{{/* The server's alerts section: the fleet engines when set, else the SQLite file. */}}
{{- define "minewatch.serverAlerts" -}}
{{- $fleet := include "minewatch.fleetDir" . }}
{{- $a := dict "store" (dict "path" (printf "%s/alerts.db" (include "minewatch.stateDir" .))) }}
{{- if .Values.fleet.postgres.url }}
{{- $store := dict "url" .Values.fleet.postgres.url }}
{{- if .Values.fleet.postgres.existingSecret }}{{ $_ := set $store "password_file" (printf "%s/pg-password" $fleet) }}{{ end }}
{{- $_ := set $a "store" $store }}
{{- end }}
{{- if .Values.fleet.nats.url }}
{{- $n := .Values.fleet.nats }}
{{- $c := dict "url" $n.url "stream" $n.stream "subject_prefix" $n.subjectPrefix "user" $n.server.user "password_file" (printf "%s/nats-password" $fleet) }}
{{- if $n.caSecret }}{{ $_ := set $c "tls" (dict "ca_file" (printf "%s/ca.crt" (include "minewatch.natsCADir" .))) }}{{ end }}
{{- $_ := set $a "consume" $c }}
{{- end }}
{{- toJson (mergeOverwrite $a (deepCopy .Values.server.alerts)) }}
{{- end }}

{{/* The agent's config file (minewatch run --config /etc/minewatch/minewatch.yaml). */}}
{{- define "minewatch.agentConfig" -}}
{{- $sources := mergeOverwrite (dict "driver" .Values.agent.driver) (deepCopy .Values.agent.sources) }}
{{- if .Values.agent.docker.enabled }}
{{- $containers := mergeOverwrite (dict "docker_socket" .Values.agent.docker.socket) (default (dict) (get $sources "containers")) }}
{{- $_ := set $sources "containers" $containers }}
{{- end }}
{{- $outputs := dict "stdout" (dict "enabled" .Values.agent.stdout.enabled "format" .Values.agent.stdout.format) }}
{{- $alerts := dict "store" (dict "path" (printf "%s/alerts.db" (include "minewatch.stateDir" .))) }}
{{- if .Values.fleet.nats.url }}
{{- /* Fleet mode: alerts go to NATS JetStream (through the agent's store), not over HTTP. */}}
{{- $_ := set $alerts "forward" (include "minewatch.agentForward" . | fromJson) }}
{{- else if .Values.server.enabled }}
{{- $_ := set $outputs "falcosidekick" (dict "enabled" true "url" (printf "https://%s:%v/" (include "minewatch.serverHost" .) .Values.server.service.port) "token_file" (printf "%s/token" (include "minewatch.identityDir" .)) "ca_file" (printf "%s/ca.crt" (include "minewatch.tlsDir" .))) }}
{{- end }}
{{- $cfg := dict
  "rules_files" (include "minewatch.rulesFiles" . | fromJsonArray)
  "engine" .Values.engine
  "sources" $sources
  "outputs" $outputs
  "web" (dict "listen" .Values.agent.web.listen)
  "alerts" $alerts
  "response" .Values.response
  "detectors" (include "minewatch.detectors" . | fromJson)
  "k8s" (dict "api" (dict "enrich" (dict "enabled" true)))
}}
{{- toYaml (mergeOverwrite $cfg (deepCopy .Values.agent.extraConfig)) }}
{{- end }}

{{/* The server's k8s.admission section: its own port, and a token or, when the API server cannot send one, explicitly none. */}}
{{- define "minewatch.admissionConfig" -}}
{{- $a := .Values.server.admission }}
{{- $out := dict "enabled" $a.enabled "mode" $a.mode "listen" (printf "0.0.0.0:%v" $a.containerPort) "max_in_flight_per_client" $a.maxInFlightPerClient }}
{{- if $a.token }}
{{- $_ := set $out "token_file" (printf "%s/admission-token" (include "minewatch.secretsDir" .)) }}
{{- end }}
{{- if $a.clientCA.existingSecret }}
{{- $_ := set $out "client_ca_file" (printf "%s/ca.crt" (include "minewatch.admissionClientCADir" .)) }}
{{- $_ := set $out "client_names" ($a.clientCA.names | default list) }}
{{- end }}
{{- if not (include "minewatch.admissionAuthenticated" .) }}
{{- $_ := set $out "allow_unauthenticated" true }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/* The API server's addresses as NetworkPolicy ipBlock CIDRs: the values', else the `kubernetes` Service's endpoints (empty under helm template). */}}
{{- define "minewatch.apiServerCIDRs" -}}
{{- $cidrs := .Values.server.admission.networkPolicy.apiServerCIDRs | default list }}
{{- if not $cidrs }}
{{- $ep := lookup "v1" "Endpoints" "default" "kubernetes" }}
{{- range ($ep.subsets | default list) }}{{ range (.addresses | default list) }}{{ $cidrs = append $cidrs (printf "%s/%s" .ip (ternary "128" "32" (contains ":" .ip))) }}{{ end }}{{ end }}
{{- end }}
{{- toJson $cidrs }}
{{- end }}

{{/* The server's config file (minewatch server --config /etc/minewatch/server.yaml). */}}
{{- define "minewatch.serverConfig" -}}
{{- $secrets := include "minewatch.secretsDir" . }}
{{- $tls := include "minewatch.tlsDir" . }}
{{- $web := dict "listen" .Values.server.listen "token_file" (printf "%s/agent-token" $secrets) "tls" (dict "cert_file" (printf "%s/tls.crt" $tls) "key_file" (printf "%s/tls.key" $tls)) }}
{{- if .Values.metrics.token }}{{ $_ := set $web "metrics_token_file" (printf "%s/metrics-token" $secrets) }}{{ end }}
{{- if .Values.agent.enabled }}
{{- /* Each agent posts with its own projected ServiceAccount token; the server asks the API server
  (TokenReview) whose it is and stores its alerts under the node its pod runs on. */}}
{{- $_ := set $web "inputs" (dict "service_accounts" (list (dict "namespace" .Release.Namespace "name" (include "minewatch.agentServiceAccount" .))) "audience" (include "minewatch.tokenAudience" .)) }}
{{- end }}
{{- $k8s := dict
  "audit" (dict "enabled" .Values.server.audit.enabled "token_file" (printf "%s/audit-token" $secrets))
  "admission" (include "minewatch.admissionConfig" . | fromJson)
  "api" (dict "enrich" (dict "enabled" false))
}}
{{- $cfg := dict
  "rules_files" (include "minewatch.rulesFiles" . | fromJsonArray)
  "engine" .Values.engine
  "outputs" (mergeOverwrite (dict "stdout" (dict "enabled" true "format" "json")) (deepCopy .Values.server.outputs))
  "web" $web
  "alerts" (include "minewatch.serverAlerts" . | fromJson)
  "response" .Values.response
  "k8s" $k8s
}}
{{- toYaml (mergeOverwrite $cfg (deepCopy .Values.server.extraConfig)) }}
{{- end }}

{{/* Where a component's pods run and what they pull with: call with (dict "ctx" $ "v" .Values.agent). */}}
{{- define "minewatch.podPlacement" -}}
{{- with .v.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .ctx.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .v.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
