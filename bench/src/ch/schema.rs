//! The CH-benCHmark schema: TPC-C's nine tables plus TPC-H's `supplier`,
//! `nation` and `region`, in MySQL DDL, with the nations and regions that
//! the analytical queries name.

/// Table names in load order (the order the checks and reports list them).
pub const TABLES: [&str; 12] = [
    "warehouse",
    "district",
    "customer",
    "history",
    "new_order",
    "orders",
    "order_line",
    "item",
    "stock",
    "supplier",
    "nation",
    "region",
];

/// `CREATE TABLE` statements for the twelve tables.
pub const DDL: [&str; 12] = [
    "CREATE TABLE warehouse (
        w_id INT NOT NULL, w_name VARCHAR(10), w_street_1 VARCHAR(20),
        w_street_2 VARCHAR(20), w_city VARCHAR(20), w_state CHAR(2), w_zip CHAR(9),
        w_tax DECIMAL(4,4), w_ytd DECIMAL(12,2), PRIMARY KEY (w_id))",
    "CREATE TABLE district (
        d_id INT NOT NULL, d_w_id INT NOT NULL, d_name VARCHAR(10),
        d_street_1 VARCHAR(20), d_street_2 VARCHAR(20), d_city VARCHAR(20),
        d_state CHAR(2), d_zip CHAR(9), d_tax DECIMAL(4,4), d_ytd DECIMAL(12,2),
        d_next_o_id INT, PRIMARY KEY (d_w_id, d_id))",
    "CREATE TABLE customer (
        c_id INT NOT NULL, c_d_id INT NOT NULL, c_w_id INT NOT NULL,
        c_first VARCHAR(16), c_middle CHAR(2), c_last VARCHAR(16),
        c_street_1 VARCHAR(20), c_street_2 VARCHAR(20), c_city VARCHAR(20),
        c_state CHAR(2), c_zip CHAR(9), c_phone CHAR(16), c_since DATETIME,
        c_credit CHAR(2), c_credit_lim DECIMAL(12,2), c_discount DECIMAL(4,4),
        c_balance DECIMAL(12,2), c_ytd_payment DECIMAL(12,2), c_payment_cnt INT,
        c_delivery_cnt INT, c_data VARCHAR(500),
        PRIMARY KEY (c_w_id, c_d_id, c_id),
        INDEX idx_customer_name (c_w_id, c_d_id, c_last, c_first))",
    "CREATE TABLE history (
        h_c_id INT, h_c_d_id INT, h_c_w_id INT, h_d_id INT, h_w_id INT,
        h_date DATETIME, h_amount DECIMAL(6,2), h_data VARCHAR(24))",
    "CREATE TABLE new_order (
        no_o_id INT NOT NULL, no_d_id INT NOT NULL, no_w_id INT NOT NULL,
        PRIMARY KEY (no_w_id, no_d_id, no_o_id))",
    "CREATE TABLE orders (
        o_id INT NOT NULL, o_d_id INT NOT NULL, o_w_id INT NOT NULL, o_c_id INT,
        o_entry_d DATETIME, o_carrier_id INT, o_ol_cnt INT, o_all_local INT,
        PRIMARY KEY (o_w_id, o_d_id, o_id),
        INDEX idx_orders_customer (o_w_id, o_d_id, o_c_id, o_id))",
    "CREATE TABLE order_line (
        ol_o_id INT NOT NULL, ol_d_id INT NOT NULL, ol_w_id INT NOT NULL,
        ol_number INT NOT NULL, ol_i_id INT, ol_supply_w_id INT,
        ol_delivery_d DATETIME, ol_quantity INT, ol_amount DECIMAL(6,2),
        ol_dist_info CHAR(24), PRIMARY KEY (ol_w_id, ol_d_id, ol_o_id, ol_number))",
    "CREATE TABLE item (
        i_id INT NOT NULL, i_im_id INT, i_name VARCHAR(24), i_price DECIMAL(5,2),
        i_data VARCHAR(50), PRIMARY KEY (i_id))",
    "CREATE TABLE stock (
        s_i_id INT NOT NULL, s_w_id INT NOT NULL, s_quantity INT,
        s_dist_01 CHAR(24), s_dist_02 CHAR(24), s_dist_03 CHAR(24), s_dist_04 CHAR(24),
        s_dist_05 CHAR(24), s_dist_06 CHAR(24), s_dist_07 CHAR(24), s_dist_08 CHAR(24),
        s_dist_09 CHAR(24), s_dist_10 CHAR(24), s_ytd INT, s_order_cnt INT,
        s_remote_cnt INT, s_data VARCHAR(50), PRIMARY KEY (s_w_id, s_i_id))",
    "CREATE TABLE supplier (
        su_suppkey INT NOT NULL, su_name CHAR(25), su_address VARCHAR(40),
        su_nationkey INT, su_phone CHAR(15), su_acctbal DECIMAL(12,2),
        su_comment VARCHAR(101), PRIMARY KEY (su_suppkey))",
    "CREATE TABLE nation (
        n_nationkey INT NOT NULL, n_name CHAR(25), n_regionkey INT,
        n_comment VARCHAR(152), PRIMARY KEY (n_nationkey))",
    "CREATE TABLE region (
        r_regionkey INT NOT NULL, r_name CHAR(55), r_comment VARCHAR(152),
        PRIMARY KEY (r_regionkey))",
];

/// The five regions, keyed 0..=4.
pub const REGIONS: [&str; 5] = ["Africa", "America", "Asia", "Australia", "Europe"];

/// The 62 nations: `(name, region key)`. Nation keys are the ASCII codes of
/// `0-9A-Za-z` in order, so that a customer's nation is the code of the
/// first letter of its state, as the queries join them.
pub const NATIONS: [(&str, i64); 62] = [
    ("Argentina", 1),
    ("Bangladesh", 2),
    ("Djibouti", 0),
    ("Estonia", 4),
    ("Fiji", 3),
    ("Guatemala", 1),
    ("Haiti", 1),
    ("Iceland", 4),
    ("Jordan", 2),
    ("Kiribati", 3),
    ("Australia", 3),
    ("Belgium", 4),
    ("Cambodia", 2),
    ("Denmark", 4),
    ("Equador", 1),
    ("France", 4),
    ("Germany", 4),
    ("Hungary", 4),
    ("Italy", 4),
    ("Japan", 2),
    ("Kenya", 0),
    ("Lithuania", 4),
    ("Mexico", 1),
    ("Netherlands", 4),
    ("Oman", 2),
    ("Portugal", 4),
    ("Qatar", 2),
    ("Rwanda", 0),
    ("Serbia", 4),
    ("Togo", 0),
    ("United States", 1),
    ("Vietnam", 2),
    ("Singapore", 2),
    ("Xanadu", 1),
    ("Yemen", 2),
    ("Zimbabwe", 0),
    ("Laos", 2),
    ("Malta", 4),
    ("Nigeria", 0),
    ("Norway", 4),
    ("Peru", 1),
    ("Romania", 4),
    ("Sudan", 0),
    ("Tunisia", 0),
    ("Uruguay", 1),
    ("Vanuatu", 3),
    ("Wales", 4),
    ("Yugoslavia", 4),
    ("Zambia", 0),
    ("Algeria", 0),
    ("Brazil", 1),
    ("Canada", 1),
    ("Dominica", 1),
    ("Egypt", 0),
    ("Finland", 4),
    ("Ghana", 0),
    ("Honduras", 1),
    ("India", 2),
    ("Jamaica", 1),
    ("Korea", 2),
    ("Libya", 0),
    ("Cameroon", 0),
];

/// The key of nation number `n` (0..62): the ASCII code of `0-9A-Za-z`[n].
pub fn nation_key(n: usize) -> i64 {
    let code = match n {
        0..=9 => b'0' + n as u8,
        10..=35 => b'A' + (n - 10) as u8,
        _ => b'a' + (n - 36) as u8,
    };
    i64::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nation_keys_cover_the_states_first_letters() {
        let keys: Vec<i64> = (0..NATIONS.len()).map(nation_key).collect();
        for letter in b'A'..=b'Z' {
            assert!(keys.contains(&i64::from(letter)));
        }
        assert_eq!(keys[0], 48);
        assert_eq!(keys[61], i64::from(b'z'));
        // The nations the queries name are customers' nations too.
        for name in ["Germany", "Cambodia"] {
            let n = NATIONS.iter().position(|(n, _)| *n == name).unwrap();
            assert!((nation_key(n) as u8).is_ascii_uppercase(), "{name}");
        }
    }
}
