//! The labels hold the setups together: each Deployment's selector picks its own pods and
//! no other's, every Service and PodDisruptionBudget picks pods, the canary shares the
//! stable Service, and blue-green switches by its `slot` label.

use super::{Labels, labels, manifests, of_kind, selects};
use serde_json::Value;
use std::collections::BTreeMap;

#[test]
fn selectors_match_their_pods_and_no_others() {
    let all = manifests();
    let deployments = of_kind(&all, "Deployment");
    for d in &deployments {
        let selector = labels(&d.doc["spec"]["selector"]["matchLabels"]);
        assert!(selects(&selector, &d.pod_labels()), "{}: selector", d.at());
        for other in deployments.iter().filter(|o| o.name() != d.name()) {
            assert!(
                !selects(&selector, &other.pod_labels()),
                "{} would adopt the pods of {}",
                d.at(),
                other.at()
            );
        }
    }
    let picked = |selector: &Labels| -> Vec<&str> {
        deployments
            .iter()
            .filter(|d| selects(selector, &d.pod_labels()))
            .map(|d| d.name())
            .collect()
    };
    for s in of_kind(&all, "Service") {
        let pods = picked(&labels(&s.doc["spec"]["selector"]));
        assert!(!pods.is_empty(), "{}: selects no pods", s.at());
        for port in s.doc["spec"]["ports"].as_array().into_iter().flatten() {
            assert_eq!(
                port["targetPort"],
                "http",
                "{}: target the named port",
                s.at()
            );
        }
    }
    for p in of_kind(&all, "PodDisruptionBudget") {
        let selector = labels(&p.doc["spec"]["selector"]["matchLabels"]);
        assert!(!picked(&selector).is_empty(), "{}: selects no pods", p.at());
    }

    // Canary: the stable and canary pods share the Service; fewer canaries.
    let service = |name: &str| {
        all.iter()
            .find(|m| m.kind() == "Service" && m.name() == name)
            .unwrap_or_else(|| panic!("no Service {name}"))
    };
    let shared = picked(&labels(&service("plinth").doc["spec"]["selector"]));
    assert_eq!(
        shared,
        ["plinth-canary", "plinth"],
        "the Service `plinth` reaches"
    );
    let replicas = |name: &str| {
        deployments
            .iter()
            .find(|d| d.name() == name)
            .and_then(|d| d.doc["spec"]["replicas"].as_u64())
            .unwrap_or_else(|| panic!("{name} has no replicas"))
    };
    assert!(replicas("plinth-canary") < replicas("plinth"));

    // Blue-green: two slots, one Service on each, switched by the slot label.
    let slots: BTreeMap<&str, &str> = deployments
        .iter()
        .filter_map(|d| {
            Some((
                d.doc["spec"]["template"]["metadata"]["labels"]["slot"].as_str()?,
                d.name(),
            ))
        })
        .collect();
    assert_eq!(
        slots,
        BTreeMap::from([("blue", "plinth-blue"), ("green", "plinth-green")])
    );
    let live = labels(&service("plinth-live").doc["spec"]["selector"]);
    let idle = labels(&service("plinth-idle").doc["spec"]["selector"]);
    assert!(live.contains_key("slot") && idle.contains_key("slot"));
    assert_ne!(
        live["slot"], idle["slot"],
        "live and idle reach different slots"
    );
    assert_eq!(picked(&live).len(), 1);
    assert_eq!(picked(&idle).len(), 1);
    let mut switched = live.clone();
    switched.insert("slot".to_owned(), idle["slot"].clone());
    assert_eq!(
        picked(&switched),
        picked(&idle),
        "switching the slot label moves live"
    );
    let same_pods = |a: &str, b: &str| {
        let pod = |n: &str| {
            deployments
                .iter()
                .find(|d| d.name() == n)
                .map(|d| d.doc["spec"]["template"]["spec"].clone())
        };
        let strip = |mut v: Value| {
            v["containers"][0]["image"] = Value::Null;
            v
        };
        pod(a).map(strip) == pod(b).map(strip)
    };
    for (a, b) in [
        ("plinth", "plinth-canary"),
        ("plinth", "plinth-blue"),
        ("plinth", "plinth-green"),
    ] {
        assert!(same_pods(a, b), "{a} and {b} differ beyond their image");
    }
}
